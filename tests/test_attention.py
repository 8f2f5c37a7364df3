"""Masks on nn.MultiheadAttention: in_proj_weight (weight granularity), whole heads (neuron), shrink."""

import lightning as L
import pytest
import torch
from torch import nn

from lightning_auxprune import AuxMaskPruning, AuxPruner, bake, bake_state_dict, load_shrunk, save_shrunk, shrink
from lightning_auxprune.export.heads import PrunedMultiheadAttention, remove_heads
from lightning_auxprune.export.shrink import UnsafeShrinkError
from lightning_auxprune.kept_flops import layer_flops
from tests.conftest import tiny_trainer


class Encoder(nn.Module):
    def __init__(self, **attention):
        super().__init__()
        self.embed = nn.Linear(6, 8)
        self.attn = nn.MultiheadAttention(8, 4, batch_first=True, **attention)
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        y = self.embed(x)
        y = self.attn(y, y, y, need_weights=False)[0]
        y = self.fc2(torch.relu(self.fc1(y)))
        return self.head(y.mean(dim=1))


def train_steps(pruner, model, steps=3):
    optimizer = torch.optim.SGD(pruner.parameter_groups(model), lr=0.05)
    for _ in range(steps):
        model(torch.randn(4, 5, 6)).sum().backward()
        pruner.before_optimizer_step(0.0)
        optimizer.step()
        pruner.after_optimizer_step()
        optimizer.zero_grad()


def test_weight_masks_cover_the_packed_projection():
    torch.manual_seed(0)
    model = Encoder()
    pruner = AuxPruner(strength=1e-2)
    masks = pruner.attach(model, torch.zeros(1, 5, 6))
    assert masks["attn"].aux.shape == (24, 8)  # q, k and v of all heads
    assert "attn.out_proj" in masks  # a Linear of its own
    with torch.no_grad():
        masks["attn"].aux[:3] = -1.0
    before = masks["attn"].aux.detach().clone()
    train_steps(pruner, model)
    assert not torch.equal(masks["attn"].aux, before)  # the projection's masks train
    baked = bake(model)
    assert torch.equal(baked.attn.in_proj_weight, model.attn.in_proj_weight)
    assert (baked.attn.in_proj_weight[:3] == 0).all()
    from_state = bake_state_dict(model.state_dict())
    assert torch.equal(from_state["attn.in_proj_weight"], baked.attn.in_proj_weight)
    assert set(from_state) == set(baked.state_dict())


def test_head_masks_gate_whole_heads_and_learn():
    torch.manual_seed(0)
    model = Encoder().eval()
    pruner = AuxPruner(granularity="neuron", strength=1e-2)
    masks = pruner.attach(model, torch.zeros(1, 5, 6))
    assert masks["attn"].aux.shape == (4,) and "attn.out_proj" not in masks
    with torch.no_grad():
        masks["attn"].aux[1] = -1.0
    weight = model.attn.in_proj_weight
    rows = torch.arange(24).reshape(3, 4, 2)[:, 1].reshape(-1)  # head 1's q, k and v rows
    assert (weight[rows] == 0).all() and (model.attn.in_proj_bias[rows] == 0).all()
    assert (weight[torch.arange(24)[~torch.isin(torch.arange(24), rows)]] != 0).all()
    row = next(r for r in pruner.layer_rows() if r["layer"] == "attn")
    assert (row["units"], row["units_kept"]) == (4, 3)  # heads, not projection rows
    model.train()
    model(torch.randn(4, 5, 6)).sum().backward()
    assert masks["attn"].aux.grad.shape == (4,) and masks["attn"].aux.grad.abs().sum() > 0


def test_shrink_removes_closed_heads_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = Encoder().eval()
    x = torch.randn(2, 5, 6)
    pruner = AuxPruner(granularity="neuron")
    masks = pruner.attach(model, x)
    with torch.no_grad():
        masks["attn"].aux[[0, 2]] = -1.0
        masks["fc1"].aux[:5] = -1.0
    pruner.reset()
    result = shrink(model, x, on_unsafe="error")
    assert result.removed == {"fc1": 5, "attn": 2}
    assert isinstance(result.model.attn, PrunedMultiheadAttention) and result.model.attn.num_heads == 2
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), rtol=1e-4, atol=1e-5)
    assert pruner.metrics(0.0)["auxprune/flops_ratio"] == pytest.approx(
        result.shrunk_macs / result.dense_macs, abs=5e-3
    )
    path = tmp_path / "shrunk.pt"
    save_shrunk(result.model, str(path))
    loaded = load_shrunk(Encoder(), str(path)).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-4, atol=1e-5)


def test_heads_that_cannot_be_removed_are_refused_by_name_or_skipped():
    torch.manual_seed(0)
    model = Encoder(add_bias_kv=True).eval()
    x = torch.randn(2, 5, 6)
    pruner = AuxPruner(granularity="neuron", include=["attn"])
    masks = pruner.attach(model, x)
    with torch.no_grad():
        masks["attn"].aux[0] = -1.0
    with pytest.raises(UnsafeShrinkError, match=r"layer 'attn'.*cannot be rebuilt"):
        shrink(model, x, on_unsafe="error")
    with pytest.warns(UserWarning, match="Skipped"):
        result = shrink(model, x, on_unsafe="skip")
    assert "attn" in result.skipped
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch_first", [True, False])
def test_the_rebuilt_block_matches_attention_with_masks_and_weights(batch_first):
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(8, 2, batch_first=batch_first).eval()
    smaller = remove_heads(attention, [0, 1])  # every head kept: the same function
    q = torch.randn(3, 5, 8) if batch_first else torch.randn(5, 3, 8)
    kv = torch.randn(3, 7, 8) if batch_first else torch.randn(7, 3, 8)
    padding = torch.zeros(3, 7, dtype=torch.bool)
    padding[:, -2:] = True
    causal = torch.ones(5, 7, dtype=torch.bool).triu(1)
    for kwargs in ({}, {"key_padding_mask": padding, "attn_mask": causal}, {"need_weights": False}):
        expected, weights = attention(q, kv, kv, **kwargs)
        got, got_weights = smaller(q, kv, kv, **kwargs)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        if weights is not None:
            torch.testing.assert_close(got_weights, weights, rtol=1e-5, atol=1e-5)


def test_separate_qkv_weights_are_refused_with_advice():
    model = nn.Sequential()
    model.attn = nn.MultiheadAttention(8, 2, kdim=4, vdim=4)
    with pytest.raises(ValueError, match="exclude it"):
        AuxPruner().attach(model)


def test_the_layer_table_counts_attention_once():
    torch.manual_seed(0)
    model = Encoder()
    pruner = AuxPruner()
    masks = pruner.attach(model, torch.zeros(1, 5, 6))
    with torch.no_grad():
        masks["attn"].aux[:12] = -1.0  # half of the packed projection
    rows = {r["layer"]: r for r in pruner.layer_rows()}
    kept = pruner.kept_flops()
    _, dense = layer_flops(Encoder(), torch.zeros(1, 5, 6))
    closed = kept.per_layer["attn"] - rows["attn"]["flops_kept"]
    assert closed == pytest.approx(0.5 * dense["attn.in_proj_weight"], abs=1)  # half the q/k/v FLOPs go
    assert rows["attn"]["flops_dense"] == round(dense["attn"])
    table = pruner.table()
    total_dense = sum(round(v) for v in kept.per_layer.values())
    assert f"{total_dense}" in table.splitlines()[-2]  # each layer once: no q/k/v double count


class AttentionModule(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = Encoder()
        self.example_input_array = torch.zeros(1, 5, 6)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-2)


@pytest.mark.parametrize("granularity", ["weight", "neuron"])
def test_the_callback_prunes_attention_in_a_trainer(tmp_path, granularity):
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 5, 6), torch.randint(0, 3, (64,)))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    callback = AuxMaskPruning(granularity=granularity, strength=0.05, aux_lr=0.5, print_table=False)
    module = AttentionModule()
    tiny_trainer(tmp_path, 3, [callback]).fit(module, loader)
    assert "net.attn" in callback.masks
    assert float(callback.masks["net.attn"].aux.min()) < 1.0  # the attention masks trained
    baked = bake(module)
    assert isinstance(baked.net.attn, nn.MultiheadAttention) and baked.net.attn.in_proj_weight.shape == (24, 8)
