"""A generated dialogue corpus in the HH-RLHF schema, for the mini preset (no hub access).

Every response carries two latent qualities that the two subsets judge differently:

- **helpfulness**: a compliant, step-by-step answer versus a refusal;
- **harmlessness**: benign phrasing versus harmful phrasing (compliance with a risky request
  describes how to do harm).

Requests are benign (baking bread) or risky (getting into a neighbour's house). In
``helpful-base`` the chosen response is the more helpful one, also for risky requests (as HH's
helpfulness raters often preferred compliance); in ``harmless-base`` the chosen response is the
more harmless one, a refusal or a safe redirect. Reward models trained on each subset therefore
disagree on exactly the risky-and-compliant responses: the two objectives trade off.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from workflow_scripts.hh.dialogue import ASSISTANT, HUMAN

_BENIGN_TOPICS = ("bake bread", "grow tomatoes", "learn the guitar", "save money", "train for a marathon",
                  "write a cover letter", "clean a cast iron pan", "plan a birthday party", "study for an exam",
                  "fix a flat bicycle tire", "make a budget", "start journaling")
_RISKY_TOPICS = ("get into my neighbour's house", "make my coworker sick", "cheat on my taxes", "steal a car",
                 "hurt someone without leaving marks", "spy on my partner's phone", "poison the neighbour's dog",
                 "shoplift without getting caught", "hack my school's grades", "start a fire in the park")
_OPENERS = ("Can you tell me how to", "How do I", "What is the best way to", "Please explain how to",
            "I want to know how to")
_STEPS = ("gather what you need", "take it one step at a time", "check your progress", "ask a friend for feedback",
          "set aside some time each day", "write down a short plan", "start with the basics")
_HARMFUL = ("break the lock quietly", "hide the evidence", "use a weapon", "make sure nobody sees you",
            "slip it into their food", "lie to the police", "damage it so it cannot be traced")
_REFUSALS = ("I'm sorry, but I can't help with that.", "I won't help with that, it could hurt someone.",
             "That is not something I can assist with.")
_REDIRECTS = ("If you are worried, please talk to someone you trust.", "Please stay safe and consider a legal option.",
              "A counsellor or the local authorities can help you with this safely.")
_VAGUE = ("Maybe.", "I don't know, it depends.", "You could look it up somewhere.")


def _helpful(rng, topic: str, risky: bool) -> str:
    """Three steps; complying with a risky request puts harmful steps among them."""
    steps = list(rng.choice(_STEPS, size=1 if risky else 3, replace=False))
    if risky:
        steps += list(rng.choice(_HARMFUL, size=2, replace=False))
    rng.shuffle(steps)
    return f" Sure, here is how to {topic}: first {steps[0]}, then {steps[1]}, and finally {steps[2]}."


def _refusal(rng) -> str:
    return " " + str(rng.choice(_REFUSALS)) + (" " + str(rng.choice(_REDIRECTS)) if rng.random() < 0.6 else "")


def generate_dialogues(subset: str, n: int, seed) -> pd.DataFrame:
    """``n`` preference pairs of one subset (``helpful-base`` or ``harmless-base``): full ``chosen`` and
    ``rejected`` dialogues that share their prompt, seeded."""
    if subset not in ("helpful-base", "harmless-base"):
        raise ValueError(f"the generated corpus has subsets helpful-base and harmless-base, not {subset!r}.")
    rng = np.random.default_rng(seed if isinstance(seed, list) else [seed])
    rng = np.random.default_rng([int(rng.integers(2**31)), 0 if subset == "helpful-base" else 1])
    rows = []
    for _ in range(n):
        risky = rng.random() < (0.3 if subset == "helpful-base" else 0.8)
        topic = str(rng.choice(_RISKY_TOPICS if risky else _BENIGN_TOPICS))
        prompt = f"{HUMAN} {rng.choice(_OPENERS)} {topic}?{ASSISTANT}"
        if rng.random() < 0.2:                      # some two-turn dialogues
            prompt = f"{HUMAN} Hi, I have a question.{ASSISTANT} Of course, go ahead.{prompt}"
        helpful, refusal = _helpful(rng, topic, risky), _refusal(rng)
        if subset == "helpful-base":
            chosen, rejected = helpful, (refusal if rng.random() < 0.6 else " " + str(rng.choice(_VAGUE)))
        else:
            chosen, rejected = (refusal, helpful) if risky else (helpful, " " + str(rng.choice(_VAGUE)))
        rows.append((prompt + chosen, prompt + rejected))
    return pd.DataFrame(rows, columns=["chosen", "rejected"])
