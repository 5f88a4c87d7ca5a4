"""The tiny trajectory: a BPE tokenizer and a small OLMo-architecture model pretrained on the generated corpus.

Training is cut into segments between consecutive checkpoint steps: segment (a, b] loads the step-a
checkpoint with its optimizer state and trains to b. Data order and the learning rate are functions of
the global step alone, so segments reproduce one uninterrupted run, and each checkpoint is its own
(resumable) job.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..core.integrity import checkpoint_dir, verify, write_checksums
from ..core.io import atomic_dir
from ..core.plan import Pretraining
from ..sources.corpora import batch_indices, pack_blocks
from .schedule import adamw, warmup_cosine

log = logging.getLogger(__name__)
EOS, PAD = "<|endoftext|>", "<|padding|>"
TRAINER_STATE = "trainer_state.pt"


def train_tokenizer(texts: list[str], vocab_size: int, out_dir: str | Path) -> None:
    """Byte-level BPE trained on ``texts``, saved as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD)
    with atomic_dir(out_dir, "tokenizer") as tmp:
        fast.save_pretrained(tmp)


#: The FFN a pretrained model gets (``pretrain.activation``): OLMo's SwiGLU, OLMo with a gated ReLU (ReGLU),
#: or GPT-NeoX's non-gated GELU MLP with biases, parallel residual and partial rotary embeddings (Pythia's).
ACTIVATIONS = ("swiglu", "reglu", "gelu")


def build_model(cfg: Pretraining, vocab_size: int, pad_id: int | None = None, eos_id: int | None = None):
    """A model of ``cfg``'s shape and activation over ``vocab_size`` tokens, initialised by the current torch
    seed (on the meta device inside ``torch.device("meta")``: its parameter count without memory)."""
    import transformers as tf

    shape = dict(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        max_position_embeddings=cfg.data.seq_len,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    if cfg.activation == "gelu":
        config = tf.GPTNeoXConfig(**shape, hidden_act="gelu", use_parallel_residual=True, rotary_pct=0.25)
        return tf.GPTNeoXForCausalLM(config)
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"pretrain.activation: {cfg.activation!r} is not one of {', '.join(ACTIVATIONS)}")
    config = tf.OlmoConfig(**shape, hidden_act={"swiglu": "silu", "reglu": "relu"}[cfg.activation])
    return tf.OlmoForCausalLM(config)


def init_model(cfg: Pretraining, tokenizer):
    """A freshly initialised model of ``cfg``'s shape and activation (seeded by ``cfg.seed``)."""
    torch.manual_seed(cfg.seed)
    return build_model(cfg, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)


def parameter_count(cfg: Pretraining) -> int:
    """Every weight of ``cfg``'s model over its vocabulary, embeddings and output layer included (built on the
    meta device)."""
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(cfg, cfg.data.vocab_size).parameters())


def train_segment(
    cfg: Pretraining,
    corpus_path: str,
    tokenizer_dir: str,
    start_dir: str | None,
    start_step: int,
    end_step: int,
    out_dir: str,
) -> pd.DataFrame:
    """Train from ``start_step`` (checkpoint ``start_dir``; None = fresh init at 0) to ``end_step``.

    Saves an HF checkpoint with tokenizer and optimizer state to ``out_dir``; returns the loss log.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    blocks = torch.from_numpy(pack_blocks(pd.read_parquet(corpus_path)["text"].tolist(), tokenizer, cfg.data.seq_len))
    if start_dir is None:
        if start_step != 0:
            raise ValueError("a fresh model starts at step 0")
        model = init_model(cfg, tokenizer)
    else:
        verify(start_dir)  # the previous segment's bytes, as it wrote them
        model = AutoModelForCausalLM.from_pretrained(start_dir, dtype=torch.float32)
    optimizer = adamw(model, cfg.optimizer)
    if start_dir is not None:
        state = torch.load(Path(start_dir) / TRAINER_STATE, weights_only=True)
        if state["step"] != start_step:
            raise ValueError(f"{start_dir} holds step {state['step']}, expected {start_step}")
        optimizer.load_state_dict(state["optimizer"])
    model.train()
    log_rows = []
    for step in tqdm(range(start_step, end_step), desc=f"pretrain {start_step}->{end_step}", unit="step"):
        lr = cfg.optimizer.lr * warmup_cosine(step + 1, cfg.schedule)  # OLMo counts from 1
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = blocks[batch_indices(step, cfg.data.batch_size, len(blocks), cfg.seed)]
        loss = model(input_ids=batch, labels=batch).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pretraining: the loss is {loss.item()} at step {step + 1}; stopping")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optimizer.grad_clip)
        optimizer.step()
        log_rows.append({"step": step + 1, "loss": loss.item(), "lr": lr})
    model.eval()
    with checkpoint_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        torch.save({"step": end_step, "optimizer": optimizer.state_dict()}, tmp / TRAINER_STATE)
        (tmp / "pretrain.json").write_text(json.dumps({"step": end_step, "blocks": len(blocks)}))
        write_checksums(tmp)
    return pd.DataFrame(log_rows, columns=["step", "loss", "lr"])
