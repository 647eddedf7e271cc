"""Checkpoint loading: the good file loads; every kind of bad file gives one clear CheckpointError."""
import pickle
import shutil

import pytest
import torch

from engine.errors import CheckpointError
from engine.fomm import convert_to_safetensors, load_checkpoint
from engine.fomm.checkpoint import read_state_dicts


@pytest.fixture()
def cpk(fomm_fixtures):
    return fomm_fixtures / "small-cpk.pth.tar"


@pytest.fixture()
def config(fomm_fixtures):
    return fomm_fixtures / "small-config.yaml"


def _error(checkpoint, config) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(checkpoint, config)
    message = str(info.value)
    assert "\n" not in message and message, "one non-empty line"
    return message


def test_loads_and_ignores_other_top_level_keys(tmp_path, cpk, config):
    state = torch.load(cpk, weights_only=True)
    state.update(epoch=7, discriminator={"x": torch.zeros(2)}, optimizer_generator={"lr": torch.tensor(1.0)})
    path = tmp_path / "with-extras.pth.tar"
    torch.save(state, path)
    kp, gen = load_checkpoint(path, config)
    assert torch.equal(gen.final.weight, state["generator"]["final.weight"])
    assert torch.equal(kp.kp.bias, state["kp_detector"]["kp.bias"])


def test_safetensors_roundtrip(tmp_path, cpk, config):
    out = convert_to_safetensors(cpk, tmp_path / "small.safetensors")
    kp_a, gen_a = load_checkpoint(cpk, config)
    kp_b, gen_b = load_checkpoint(out, config)
    for a, b in ((kp_a, kp_b), (gen_a, gen_b)):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_missing_file(tmp_path, config):
    assert "not found" in _error(tmp_path / "nope.pth.tar", config)


def test_missing_config(tmp_path, cpk):
    assert "config not found" in _error(cpk, tmp_path / "nope.yaml")


def test_truncated_file(tmp_path, cpk, config):
    data = cpk.read_bytes()
    path = tmp_path / "truncated.pth.tar"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in _error(path, config)


def test_truncated_safetensors(tmp_path, cpk, config):
    full = convert_to_safetensors(cpk, tmp_path / "full.safetensors")
    path = tmp_path / "cut.safetensors"
    path.write_bytes(full.read_bytes()[:5000])
    assert "truncated" in _error(path, config)


def test_wrong_shapes_named(tmp_path, cpk, config):
    state = torch.load(cpk, weights_only=True)
    state["generator"]["final.weight"] = torch.zeros(3, 16, 7, 7)
    path = tmp_path / "wrong-shape.pth.tar"
    torch.save(state, path)
    message = _error(path, config)
    assert "final.weight" in message and "[3, 16, 7, 7]" in message and "[3, 8, 7, 7]" in message


def test_missing_and_unexpected_keys_named(tmp_path, cpk, config):
    state = torch.load(cpk, weights_only=True)
    del state["kp_detector"]["kp.bias"]
    state["kp_detector"]["extra.weight"] = torch.zeros(1)
    path = tmp_path / "keys.pth.tar"
    torch.save(state, path)
    message = _error(path, config)
    assert "kp.bias" in message and "extra.weight" in message and "kp_detector" in message


def test_wrong_config_for_checkpoint(tmp_path, cpk, config):
    text = config.read_text().replace("num_bottleneck_blocks: 2", "num_bottleneck_blocks: 3")
    other = tmp_path / "other.yaml"
    other.write_text(text)
    message = _error(cpk, other)
    assert "bottleneck.r2" in message and "missing" in message


def test_config_that_is_not_fomm(tmp_path, cpk):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_params:\n  foo: 1\n")
    assert "common_params" in _error(cpk, bad)
    bad.write_text("model_params:\n  common_params: {num_kp: 10, num_channels: 3}\n"
                   "  kp_detector_params: {temperature: 0.1, block_expansion: 8, max_features: 64,"
                   " num_blocks: 3, colour: red}\n  generator_params: {}\n")
    assert "colour" in _error(cpk, bad)


def test_tpsmm_like_checkpoint(tmp_path, config):
    path = tmp_path / "vox.pth.tar"
    torch.save({"kp_detector": {"fg_encoder.conv1.weight": torch.zeros(64, 3, 7, 7)},
                "inpainting_network": {"first.conv.weight": torch.zeros(1)},
                "dense_motion_network": {}, "bg_predictor": {}}, path)
    message = _error(path, config)
    assert "'generator'" in message and "Thin-Plate" in message


def test_liveportrait_like_bare_state_dict(tmp_path, config):
    path = tmp_path / "appearance_feature_extractor.pth"
    torch.save({"conv_downsample.conv.weight": torch.zeros(64, 3, 7, 7),
                "resblocks_3d.0.conv1.weight": torch.zeros(1)}, path)
    message = _error(path, config)
    assert "bare state_dict" in message and "conv_downsample.conv.weight" in message


class Payload:
    """Any custom class: unpickling it would import and run code."""

    def __reduce__(self):
        return (print, ("code ran",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_with_code_refused(tmp_path, config, capsys, writer):
    path = tmp_path / "evil.pth.tar"
    payload = {"generator": Payload(), "kp_detector": {}}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(payload, fh, protocol=2)
    message = _error(path, config)
    assert "refused" in message
    assert "code ran" not in capsys.readouterr().out


def test_not_a_dict(tmp_path, config):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    assert "not a dict" in _error(path, config)


def test_read_state_dicts_is_weights_only(tmp_path, cpk):
    copy = tmp_path / "copy.pth.tar"
    shutil.copy(cpk, copy)
    state = read_state_dicts(copy)
    assert set(state) == {"generator", "kp_detector"}
