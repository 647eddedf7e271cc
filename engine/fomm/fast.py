"""The fast exact per-frame path of the FOMM generator.

Same arithmetic as the official forward up to float32 rounding (parity tested to 1e-4), faster by:
- per-source caching (encoder, downsampled source, source heatmaps: :class:`SourceFeatures`);
- eval BatchNorm folded into the convolutions (and the pre-activation norm of each residual block
  applied as one fused multiply-add);
- nearest x2 upsampling + 3x3 conv rewritten as four 2x2 "sub-pixel" convolutions on the
  low-resolution input (exactly the same sums, 2.25x fewer multiply-adds), interleaved after;
- thin-output heads (final RGB conv, mask + occlusion merged into one conv) zero-padded to 16
  output channels and run channels_last, where oneDNN has a much faster kernel;
- Winograd F(4x4, 3x3) residual blocks (input transform as a strided conv with fixed filters,
  bias inside the output GEMM, residual add / ReLU / zero padding fused into the untiling write);
- the generator's final 7x7 conv as one GEMM over all taps plus shifted adds;
- closed-form 2x2 inverses; ``torch.inference_mode`` in callers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.fomm.blocks import Hourglass, ResBlock2d, SameBlock2d, inverse_2x2, keypoint_heatmaps
from engine.fomm.generator import OcclusionAwareGenerator, SourceFeatures

_PAD_OUT = 16


def _fold(conv: nn.Conv2d, norm: nn.BatchNorm2d | None):
    """(weight, bias) of conv followed by eval BatchNorm, computed in float64."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64,
                                                                              device=w.device)
    if norm is not None:
        scale = norm.weight.detach().double() / torch.sqrt(norm.running_var.detach().double() + norm.eps)
        w = w * scale.view(-1, 1, 1, 1)
        b = (b - norm.running_mean.detach().double()) * scale + norm.bias.detach().double()
    return w, b


def _conv(w: torch.Tensor, b: torch.Tensor, padding, dtype) -> nn.Conv2d:
    out_c, in_c, kh, kw = w.shape
    conv = nn.Conv2d(in_c, out_c, (kh, kw), padding=padding).to(device=w.device, dtype=dtype)
    with torch.no_grad():
        conv.weight.copy_(w.to(dtype))
        conv.bias.copy_(b.to(dtype))
    return conv.requires_grad_(False)


class ConvBNReLU(nn.Module):
    """Folded conv + BN, then ReLU, optional 2x2 average pool."""

    def __init__(self, block: SameBlock2d, pool: bool = False):
        super().__init__()
        w, b = _fold(block.conv, block.norm)
        self.conv = _conv(w, b, block.conv.padding, block.conv.weight.dtype)
        self.pool = pool

    def forward(self, x):
        out = F.relu(self.conv(x))
        return F.avg_pool2d(out, 2) if self.pool else out


class SubPixelUpBlock(nn.Module):
    """nearest x2 upsample -> 3x3 conv (pad 1) -> BN -> ReLU, computed at the low resolution.

    Output pixel (2i+a, 2j+b) of the upsampled conv only sees low-res rows {i-1, i} (a=0) or {i, i+1}
    (a=1), with the 3 kernel rows summed onto 2 ({w0, w1+w2} or {w0+w1, w2}); same for columns.
    """

    def __init__(self, block: SameBlock2d, winograd: bool = False):
        super().__init__()
        assert block.conv.kernel_size == (3, 3) and block.conv.padding == (1, 1)
        self.winograd = winograd  # offer the Winograd kernel (its transformed weights: 6.25x memory)
        w, b = _fold(block.conv, block.norm)  # (O, I, 3, 3)
        rows = [torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2),  # a = 0
                torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2)]  # a = 1
        phases = []
        for a in (0, 1):
            r = rows[a]  # (O, I, 2, 3)
            cols = [torch.stack([r[..., 0], r[..., 1] + r[..., 2]], -1),
                    torch.stack([r[..., 0] + r[..., 1], r[..., 2]], -1)]
            phases += [cols[0], cols[1]]  # phase index 2a + b
        self.out_channels = w.shape[0]
        # the plain 3x3 conv on the upsampled input (the "direct" method, offered to "auto"): 9 instead of 16 weights
        # per channel pair, for the weight-bound deepest levels (2x2, 4x4 inputs with 1024+ channels)
        self.conv3 = _conv(w, b, 1, block.conv.weight.dtype)
        self.conv = _conv(torch.cat(phases, 0), b.repeat(4), 0, block.conv.weight.dtype)
        self.register_buffer("weight_matrix", self.conv.weight.detach().reshape(4 * w.shape[0], -1).clone())
        self.conv.weight.data = self.conv.weight.data.contiguous(memory_format=torch.channels_last)

    #: "auto" times the kernels once per input shape and keeps the fastest; "conv", "matmul" or
    #: "winograd" (F(4x4, 2x2) on the four phases at once) force one
    method = "auto"

    def _low_res(self, xp: torch.Tensor, method: str) -> torch.Tensor:
        if method == "winograd":
            if self.__dict__.get("_wino") is None:  # built on first use (not a submodule: no state_dict)
                self.__dict__["_wino"] = WinogradConv(self.conv.weight, self.conv.bias, m=4, padding=0)
            return self.__dict__["_wino"](xp)
        if method == "matmul":  # im2col of the 2x2 windows + one GEMM (fast for wide inputs)
            n, c, hp, wp = xp.shape
            cols = xp.unfold(2, 2, 1).unfold(3, 2, 1)  # (n, c, hp-1, wp-1, 2, 2)
            cols = cols.permute(0, 1, 4, 5, 2, 3).reshape(n, c * 4, (hp - 1) * (wp - 1))
            y = torch.matmul(self.weight_matrix, cols) + self.conv.bias.view(1, -1, 1)
            return y.view(n, -1, hp - 1, wp - 1)
        return self.conv(xp.contiguous(memory_format=torch.channels_last)).contiguous()

    def _choose(self, xp: torch.Tensor) -> str:
        if self.method != "auto":
            return self.method
        key = tuple(xp.shape) + (str(xp.device), str(xp.dtype))
        chosen = self.__dict__.setdefault("_chosen", {})
        if key not in chosen:
            if not _winograd_ok(xp):
                chosen[key] = "conv"
            else:
                import time

                best = {}
                x = xp[:, :, 1:-1, 1:-1]
                for m in ("conv", "matmul", "direct") + (("winograd",) if self.winograd else ()):
                    run = (lambda: self._direct(x)) if m == "direct" else (lambda: self._low_res(xp, m))
                    run()
                    for _ in range(2):  # the better of two runs: less sensitive to other load
                        t = time.perf_counter()
                        run()
                        best[m] = min(best.get(m, 1e9), time.perf_counter() - t)
                chosen[key] = min(best, key=best.get)
        return chosen[key]

    def _direct(self, x):
        return F.relu(self.conv3(F.interpolate(x, scale_factor=2.0, mode="nearest")))

    def forward(self, x):
        n, _, h, w = x.shape
        o = self.out_channels
        xp = F.pad(x, (1, 1, 1, 1))
        method = self._choose(xp)
        if method == "direct":
            return self._direct(x)
        if method == "winograd" and n == 1:  # one pad, straight to the tile multiple
            m = 4
            th, tw = -(-(h + 1) // m), -(-(w + 1) // m)
            xp = F.pad(x, (1, tw * m - w, 1, th * m - h))
            if self.__dict__.get("_wino") is None:
                self.__dict__["_wino"] = WinogradConv(self.conv.weight, self.conv.bias, m=4, padding=0)
            y = self.__dict__["_wino"](xp, padded=True)
        else:
            y = self._low_res(xp, method)
        y = y.view(n, 4, o, *y.shape[2:])
        if not _winograd_ok(xp):  # traced/exported: no writes into views
            y = F.relu(y)
            p00 = y[:, 0, :, :h, :w]
            p01 = y[:, 1, :, :h, 1:w + 1]
            p10 = y[:, 2, :, 1:h + 1, :w]
            p11 = y[:, 3, :, 1:h + 1, 1:w + 1]
            top = torch.stack([p00, p01], dim=-1)  # (n, o, h, w, 2): row 2i, columns 2j + b
            bottom = torch.stack([p10, p11], dim=-1)
            return torch.stack([top, bottom], dim=3).reshape(n, o, 2 * h, 2 * w)
        # ReLU and the interleave in one pass: output pixel (2i + a, 2j + b) is phase 2a + b at
        # low-res (i + a, j + b)
        out = torch.empty((n, o, 2 * h, 2 * w), dtype=y.dtype, device=y.device)
        out6 = out.view(n, o, h, 2, w, 2)
        for a in (0, 1):
            for b in (0, 1):
                torch.clamp(y[:, 2 * a + b, :, a:a + h, b:b + w], min=0, out=out6[:, :, :, a, :, b])
        return out


#: finite interpolation points per tile size n (plus the point at infinity); for F(4, 3) the set
#: 0, 1, -1, 2, -1/2 has about 2.5x less float32 rounding error than the textbook 0, +-1, +-2
#: (measured on 256-channel 3x3 convs: 1.7e-5 vs 4.3e-5 max, direct convolution 1.0e-6)
_WINOGRAD_POINTS = {3: [0.0, 1.0], 4: [0.0, 1.0, -1.0], 5: [0.0, 1.0, -1.0, -0.5],
                    6: [0.0, 1.0, -1.0, 2.0, -0.5]}


def _winograd_matrices(m: int, r: int):
    """Toom-Cook matrices (A^T: m x n, G: n x r, B^T: n x n) of F(m, r), n = m + r - 1, in float64."""
    import numpy as np

    n = m + r - 1
    points = _WINOGRAD_POINTS[n]

    def vander(rows: int, cols: int):
        v = np.zeros((rows, cols))
        for i, p in enumerate(points[: rows - 1]):
            v[i] = [p**j for j in range(cols)]
        v[-1, -1] = 1.0  # the point at infinity
        return v

    return vander(n, m).T, vander(n, r), np.linalg.inv(vander(n, n)).T


class WinogradConv(nn.Module):
    """Square r x r conv (stride 1, zero padding ``padding``) as Winograd F(m x m, r x r): n^2 batched
    GEMMs (n = m + r - 1) on transformed tiles instead of the direct convolution. For F(4, 3), 4x
    fewer multiply-adds (36 instead of 144 per 4x4 output tile and channel pair); for F(4, 2),
    2.56x. The kernel transform is done once, in float64.

    Same sums as the convolution up to float32 rounding; the tile transforms add some rounding
    (F(4, 3): about 1.7e-5 max on unit-scale 256-channel activations vs 1e-6 for the direct conv).
    ``forward(x, residual=None, relu=False)``: ``conv(x) + b``, then ``+ residual``, then ReLU.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, m: int = 4, padding: int = 1):
        super().__init__()
        import numpy as np

        r = weight.shape[-1]
        assert weight.shape[-2] == r
        at, g, bt = _winograd_matrices(m, r)
        n = m + r - 1
        self.m, self.n, self.r, self.padding = m, n, r, padding
        dtype, device = weight.dtype, weight.device
        g = torch.from_numpy(g).to(device)
        u = torch.einsum("ai,ocij,bj->aboc", g, weight.detach().double(), g)  # (n, n, O, C)
        self.register_buffer("u", u.reshape(n * n, *weight.shape[:2]).to(dtype).contiguous())
        self.register_buffer("bt", torch.from_numpy(np.kron(bt, bt)).to(device, dtype))  # (n^2, n^2)
        self.register_buffer("at", torch.from_numpy(np.kron(at, at)).to(device, dtype))  # (m^2, n^2)
        self.register_buffer("bias", bias.detach().to(dtype).clone())
        self.out_channels, self.in_channels = weight.shape[:2]

    def _bias_row(self, tiles: int) -> torch.Tensor:
        """The bias repeated per tile, (1, O * tiles): added by the output-transform GEMM (addmm)."""
        rows = self.__dict__.setdefault("_bias_rows", {})
        key = (tiles, torch.is_inference_mode_enabled())
        if key not in rows:
            rows[key] = self.bias.repeat_interleave(tiles).view(1, -1)
        return rows[key]

    def padded_size(self, h: int, w: int) -> tuple[int, int] | None:
        """(H, W) of the zero-padded input ``forward(..., padded=True)`` takes for an h x w output,
        or None when h or w is not a multiple of m (then call with the unpadded input)."""
        m, r = self.m, self.r
        return (h + r - 1, w + r - 1) if h % m == 0 and w % m == 0 else None

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None, relu: bool = False,
                padded: bool = False, out: torch.Tensor | None = None):
        """``padded``: x already holds the zero padding (see :meth:`padded_size`; output size
        ``H - r + 1``); ``out``: a (possibly strided) (1, O, oh, ow) tensor to write the result into."""
        if x.shape[0] != 1:
            assert not padded and out is None
            return torch.cat([self(x[i:i + 1], None if residual is None else residual[i:i + 1], relu)
                              for i in range(x.shape[0])])
        m, n, r, p = self.m, self.n, self.r, self.padding
        _, c, h, w = x.shape
        if padded:
            xp = x
            oh, ow = h - r + 1, w - r + 1
            th, tw = oh // m, ow // m
            assert th * m == oh and tw * m == ow
        else:
            oh, ow = h + 2 * p - r + 1, w + 2 * p - r + 1
            th, tw = -(-oh // m), -(-ow // m)
            xp = F.pad(x, (p, tw * m + r - 1 - w - p, p, th * m + r - 1 - h - p))
        # input transform B^T d B of every tile as a stride-m convolution with n^2 fixed filters,
        # one image per channel: (C, n^2, tiles), used transposed (strided) by the batched GEMM
        v = F.conv2d(xp.reshape(c, 1, *xp.shape[2:]), self.bt.view(n * n, 1, n, n), stride=m)
        v = v.view(c, n * n, th * tw).transpose(0, 1)
        prod = torch.bmm(self.u, v)  # (n^2, O, tiles)
        o = self.out_channels
        y = torch.addmm(self._bias_row(th * tw), self.at, prod.view(n * n, o * th * tw))  # (m^2, O*tiles)
        y5 = y.view(m, m, o, th, tw)
        if th * m != oh or tw * m != ow:
            y = y5.permute(2, 3, 0, 4, 1).reshape(1, o, th * m, tw * m)[:, :, :oh, :ow]
            y = y if residual is None else torch.add(residual, y)
            y = y.relu_() if relu else y
            if out is None:
                return y
            return out.copy_(y)
        if out is None:
            out = torch.empty((1, o, oh, ow), dtype=y.dtype, device=y.device)

        def tiled(t):  # (1, O, th*m, tw*m) -> (m, m, O, th, tw) view
            return t[0].unflatten(1, (th, m)).unflatten(3, (tw, m)).permute(2, 4, 0, 1, 3)

        if residual is not None:
            torch.add(tiled(residual), y5, out=tiled(out))
            if relu:
                out.relu_()
        elif relu:
            torch.clamp(y5, min=0, out=tiled(out))
        else:
            tiled(out).copy_(y5)
        return out


def _winograd_ok(x: torch.Tensor) -> bool:
    """The Winograd kernels are for eager CPU runs; traced/exported graphs keep plain Conv nodes
    (ONNX Runtime has its own conv kernels)."""
    return x.device.type == "cpu" and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export()


class FastResBlock(nn.Module):
    #: "winograd" (F(4x4, 3x3), default) or "conv" (direct oneDNN convolution) for the two 3x3 convs
    method = "winograd"

    def __init__(self, block: ResBlock2d):
        super().__init__()
        n1 = block.norm1
        scale = n1.weight.detach().double() / torch.sqrt(n1.running_var.detach().double() + n1.eps)
        shift = n1.bias.detach().double() - n1.running_mean.detach().double() * scale
        dtype = block.conv1.weight.dtype
        self.register_buffer("scale", scale.to(dtype).view(1, -1, 1, 1))
        self.register_buffer("shift", shift.to(dtype).view(1, -1, 1, 1))
        self.conv1 = _conv(*_fold(block.conv1, block.norm2), block.conv1.padding, dtype)
        self.conv2 = _conv(*_fold(block.conv2, None), block.conv2.padding, dtype)
        square = all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in (block.conv1, block.conv2))
        self.wino1 = WinogradConv(self.conv1.weight, self.conv1.bias) if square else None
        self.wino2 = WinogradConv(self.conv2.weight, self.conv2.bias) if square else None

    def forward(self, x):
        out = F.relu(torch.addcmul(self.shift, x, self.scale))
        if self.method == "winograd" and self.wino1 is not None and _winograd_ok(x):
            size = self.wino1.padded_size(*x.shape[2:]) if x.shape[0] == 1 else None
            if size is None:
                return self.wino2(self.wino1(out, relu=True), residual=x)
            # both conv inputs are written straight into zero-bordered buffers (kept per shape:
            # only their interiors are ever written), so neither conv pads
            h, w = x.shape[2:]
            bufs = self.__dict__.setdefault("_buffers", {})
            key = (tuple(x.shape), x.dtype, x.device, torch.is_inference_mode_enabled())
            if key not in bufs:
                bufs[key] = [x.new_zeros(1, x.shape[1], *size) for _ in range(2)]
            a, b = bufs[key]
            inner_a, inner_b = a[:, :, 1:h + 1, 1:w + 1], b[:, :, 1:h + 1, 1:w + 1]
            torch.addcmul(self.shift, x, self.scale, out=inner_a)
            inner_a.relu_()
            self.wino1(a, relu=True, padded=True, out=inner_b)
            return self.wino2(b, residual=x, padded=True)
        out = F.relu(self.conv1(out))
        return self.conv2(out) + x


class ThinHead(nn.Module):
    """A conv with few output channels, zero-padded to 16 and run channels_last; returns ``splits``."""

    def __init__(self, convs: list[nn.Conv2d]):
        super().__init__()
        ws, bs = zip(*(_fold(c, None) for c in convs))
        w, b = torch.cat(ws, 0), torch.cat(bs, 0)
        self.splits = [c.out_channels for c in convs]
        extra = (-w.shape[0]) % _PAD_OUT
        if extra:
            w = torch.cat([w, w.new_zeros(extra, *w.shape[1:])], 0)
            b = torch.cat([b, b.new_zeros(extra)], 0)
        self.conv = _conv(w, b, convs[0].padding, convs[0].weight.dtype)
        self.conv.weight.data = self.conv.weight.data.contiguous(memory_format=torch.channels_last)
        self.channels_last = True
        self.taps = False  # see forward_taps

    def forward_taps(self, x):
        """Same conv as one GEMM of all k*k taps' weights with the unpadded input, (k*k*O, C) x
        (C, H*W), then k*k shifted adds of the (O, H, W) tap planes (clipped at the borders: the
        zero padding). For wide, large inputs (the generator's final 7x7 conv, 64 -> 3 channels at
        256x256) this is faster than the direct convolution, which pads the output to 16 channels."""
        _, c, h, w = x.shape
        kh, kw = self.conv.kernel_size
        ph, pw = self.conv.padding
        o = sum(self.splits)
        key = (x.device, x.dtype, torch.is_inference_mode_enabled())
        if self.__dict__.get("_taps_key") != key:
            wt = self.conv.weight.detach()[:o].permute(2, 3, 0, 1).reshape(kh * kw * o, c)
            self.__dict__["_taps"] = wt.to(x.device, x.dtype).contiguous()
            self.__dict__["_taps_key"] = key
        planes = torch.mm(self.__dict__["_taps"], x.reshape(c, h * w)).view(kh, kw, o, h, w)
        out = self.conv.bias.detach()[:o].view(1, o, 1, 1).expand(1, o, h, w).clone()
        for i in range(kh):
            dy = i - ph
            y0, y1 = max(0, -dy), min(h, h - dy)
            for j in range(kw):
                dx = j - pw
                x0, x1 = max(0, -dx), min(w, w - dx)
                if y0 < y1 and x0 < x1:
                    out[0, :, y0:y1, x0:x1] += planes[i, j, :, y0 + dy:y1 + dy, x0 + dx:x1 + dx]
        return list(torch.split(out, self.splits, dim=1)) if len(self.splits) > 1 else [out]

    def forward(self, x):
        if (self.taps and x.shape[0] == 1 and self.conv.stride == (1, 1) and self.conv.dilation == (1, 1)
                and _winograd_ok(x)):
            return self.forward_taps(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.conv(x)
        parts = torch.split(out[:, : sum(self.splits)], self.splits, dim=1)
        return [p.contiguous() for p in parts]


class FastHourglass(nn.Module):
    def __init__(self, hourglass: Hourglass):
        super().__init__()
        self.down = nn.ModuleList(ConvBNReLU(b, pool=True) for b in hourglass.encoder.down_blocks)
        self.up = nn.ModuleList(SubPixelUpBlock(b) for b in hourglass.decoder.up_blocks)

    def forward(self, x):
        skips = [x]
        for block in self.down:
            skips.append(block(skips[-1]))
        out = skips.pop()
        for block in self.up:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return out


class FastGenerator(nn.Module):
    """Per-frame FOMM generator with folded weights; built from a loaded OcclusionAwareGenerator.

    ``animate(features, kp_driving)`` takes the generator's :class:`SourceFeatures`
    (``generator.encode_source``) and returns the same dict as the official forward
    (without ``deformed`` unless ``with_deformed``).
    """

    def __init__(self, generator: OcclusionAwareGenerator):
        super().__init__()
        self.generator = generator  # for encode_source and settings
        dm = generator.dense_motion_network
        if dm is None:
            raise ValueError("FastGenerator needs a generator with a dense motion network")
        self.num_kp = dm.num_kp
        self.kp_variance = dm.kp_variance
        self.hourglass = FastHourglass(dm.hourglass)
        heads = [dm.mask] + ([dm.occlusion] if dm.occlusion is not None else [])
        self.heads = ThinHead(heads)
        self.has_occlusion = dm.occlusion is not None
        self.bottleneck = nn.Sequential(*(FastResBlock(b) for b in generator.bottleneck))
        self.up = nn.ModuleList(SubPixelUpBlock(b, winograd=True) for b in generator.up_blocks)
        self.final = ThinHead([generator.final])
        self.final.taps = True
        self.eval().requires_grad_(False)

    @property
    def align_corners(self) -> bool:
        return self.generator.align_corners

    def encode_source(self, source_image, kp_source) -> SourceFeatures:
        return self.generator.encode_source(source_image, kp_source)

    def motion(self, repeat, grid, heat_source, kp_source_value, kp_source_jacobian,
               kp_driving_value, kp_driving_jacobian):
        """Dense motion from tensors only (exportable): mask, deformation, occlusion, sparse_deformed."""
        n, k, _ = kp_driving_value.shape
        h, w, _ = grid.shape
        heat = keypoint_heatmaps(kp_driving_value, h, w, self.kp_variance) - heat_source
        heat = torch.cat([heat.new_zeros(n, 1, h, w), heat], dim=1)
        coords = grid.view(1, 1, h * w, 2) - kp_driving_value.view(n, k, 1, 2)
        if kp_driving_jacobian is not None:
            jac = torch.matmul(kp_source_jacobian, inverse_2x2(kp_driving_jacobian))
            coords = torch.matmul(coords, jac.transpose(-1, -2))
        moved = coords + kp_source_value.view(n, k, 1, 2)
        motions = torch.cat([grid.view(1, 1, h * w, 2).expand(n, 1, h * w, 2), moved], 1)
        motions = motions.view(n, k + 1, h, w, 2)
        deformed = F.grid_sample(repeat, motions.view(n * (k + 1), h, w, 2), mode="bilinear",
                                 padding_mode="zeros", align_corners=self.align_corners)
        deformed = deformed.view(n, k + 1, -1, h, w)
        x = torch.cat([heat.unsqueeze(2), deformed], dim=2).view(n, -1, h, w)
        parts = self.heads(self.hourglass(x))
        mask = F.softmax(parts[0], dim=1)
        deformation = (motions * mask.unsqueeze(-1)).sum(dim=1)
        occlusion = torch.sigmoid(parts[1]) if self.has_occlusion else None
        return deformed, mask, deformation, occlusion

    def decode(self, encoded, deformation, occlusion):
        out = encoded
        if deformation.shape[1:3] != out.shape[2:]:
            deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=out.shape[2:],
                                        mode="bilinear").permute(0, 2, 3, 1)
        out = F.grid_sample(out, deformation, mode="bilinear", padding_mode="zeros",
                            align_corners=self.align_corners)
        if occlusion is not None:
            if occlusion.shape[2:] != out.shape[2:]:
                occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear")
            out = out * occlusion
        out = self.bottleneck(out)
        for block in self.up:
            out = block(out)
        return torch.sigmoid(self.final(out)[0])

    def animate(self, features: SourceFeatures, kp_driving: dict, with_deformed: bool = False) -> dict:
        d = features.dense
        ks = features.kp_source
        deformed, mask, deformation, occlusion = self.motion(
            d["repeat"], d["grid"], d["heat_source"], ks["value"], ks.get("jacobian"),
            kp_driving["value"], kp_driving.get("jacobian"))
        out = {"sparse_deformed": deformed, "mask": mask, "deformation": deformation,
               "prediction": self.decode(features.encoded, deformation, occlusion)}
        if occlusion is not None:
            out["occlusion_map"] = occlusion
        if with_deformed:
            out["deformed"] = self.generator.warp(features.source_image, deformation)
        return out
