"""A tiny random-weight chat model for demos and tests: a 2-layer Llama with a byte-level ChatML tokenizer."""

from __future__ import annotations

from pathlib import Path

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
# ChatML, the format of the tiny model's tokenizer (and of Qwen, SmolLM and many others).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_tiny_chat_model(path: Path) -> str:
    """Write the model and tokenizer into `path` with save_pretrained; return the folder."""
    import torch
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import GenerationConfig, GPT2Tokenizer, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    # Every byte is a token, so no text is ever unknown and no merges are needed.
    vocab = {char: index for index, char in enumerate(sorted(ByteLevel.alphabet()))}
    start, end = len(vocab), len(vocab) + 1
    vocab |= {IM_START: start, IM_END: end}
    tokenizer = GPT2Tokenizer(
        vocab=vocab,
        merges=[],
        unk_token=IM_END,
        bos_token=IM_START,
        eos_token=IM_END,
        pad_token=IM_END,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096 + 512,
        bos_token_id=start,
        eos_token_id=end,  # a chat turn ends with <|im_end|>
        pad_token_id=end,
    )
    with torch.random.fork_rng():  # build the same weights every time without touching the caller's RNG
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=start, eos_token_id=end, pad_token_id=end)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
