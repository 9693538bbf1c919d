"""`mimo train repo`: retrain a model on the user's own repositories, measure it before and after on held-out
files, export it for every command and for vLLM, and mine RL tasks from the repository's own tests.

Modules: sources (paths, git repositories, archives), dataset (the data pipeline plus the split and the
loss filter), loss_filter, tuning (LoRA or full fine-tuning, export), trainer (the loop: early stopping, time
budget, resume), run (the whole command), and mining/ (RL tasks from the test suite). docs/repo-training.md.
"""
