"""The HH-RLHF dialogue format, ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``: its turn markers and where a prompt
ends. The data stage parses dialogues with it, the generated corpus writes them, the completions stop at
the next human turn; a module of its own so that none of them imports another for it.
"""
from __future__ import annotations

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"


def split_dialogue(dialogue: str, where: str = "dialogue") -> tuple[str, str]:
    """``(prompt, response)``: the prompt ends with the last ``"\\n\\nAssistant:"``, the response follows it."""
    if not isinstance(dialogue, str):
        raise ValueError(f"{where}: a dialogue must be a string, got {type(dialogue).__name__}.")
    cut = dialogue.rfind(ASSISTANT)
    if cut < 0:
        raise ValueError(f"{where}: no assistant turn ('\\n\\nAssistant:') in the dialogue {dialogue[:60]!r}.")
    if HUMAN not in dialogue[:cut]:
        raise ValueError(f"{where}: no human turn before the last assistant turn in {dialogue[:60]!r}.")
    return dialogue[:cut + len(ASSISTANT)], dialogue[cut + len(ASSISTANT):]
