"""One session's conversation, simulated step by step.

A walk goes through the states the way users do: minute gaps with a long
tail, questions sometimes asked again, the odd translation error, LLM errors
while recommendations are generated, and a chance to leave at every step
that grows with the client's and the conversation type's difficulty and
right after a repeated question or an error. Times are offsets from the
session's start; ``generator`` places sessions in time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from services.demo.content import (
    ANSWERS,
    CLIENTS,
    CONVERSATIONS,
    LANGUAGES,
    LLM_ERRORS,
    TRANSLATION_ERROR,
)
from services.demo.plan import PlannedCheckpoint
from services.sessions.states import STAGE_OF_STATE

# Chances to leave, before the client's and conversation type's difficulty.
DROP_BEFORE_QUESTIONS = 0.05
DROP_PER_QUESTION = 0.007
DROP_AFTER_REPEAT = 0.05
DROP_GENERATING = 0.02
DROP_AWAITING = 0.05
DROP_PENDING = 0.04
# Not scaled: whether an LLM error drives a user away.
DROP_AFTER_LLM_ERROR = 0.3
LLM_ERROR_CHANCE = 0.12
LLM_ERROR_WEIGHTS = (0.6, 0.4)
TRANSLATION_ERROR_CHANCE = 0.015
ACTIVITY_CHANCE = 0.2
FOLLOW_UP_CHANCE = 0.6
# Repeated questions and errors of a struggling session: four of each put
# its risk score at 50 or more (high), see services/sessions/risk.py.
STRUGGLING_REPEATS = 4
STRUGGLING_ERRORS = (4, 5)
# Checkpoints are taken on entering these states (each starts a stage).
CHECKPOINT_STATES = (
    "COLLECTING_INFO",
    "GENERATING_RECOMMENDATIONS",
    "PENDING_APPROVAL",
)
MIN_GAP_SECONDS = 5

Step = tuple[timedelta, str, dict[str, Any]]


@dataclass(frozen=True)
class Profile:
    """What shapes one session's conversation."""

    client_id: int
    conversation_type: str
    language: str
    difficulty: float
    repeat_chance: float
    base_questions: int
    follow_ups: int

    def question(self, index: int) -> str:
        questions = CONVERSATIONS[self.conversation_type].questions
        if index < len(questions):
            return questions[index]
        return f"Follow-up {index + 1}: could you add a little more detail?"


def draw_profile(rng: random.Random, client_id: int) -> Profile:
    """A conversation type, language and length for a session of a client."""
    conversation_type = rng.choices(
        list(CONVERSATIONS), weights=[c.weight for c in CONVERSATIONS.values()]
    )[0]
    conversation = CONVERSATIONS[conversation_type]
    language = rng.choices(
        list(LANGUAGES), weights=[share for share, _ in LANGUAGES.values()]
    )[0]
    follow_ups = 0
    if rng.random() < FOLLOW_UP_CHANCE:
        follow_ups = rng.randint(*conversation.follow_ups)
    return Profile(
        client_id=client_id,
        conversation_type=conversation_type,
        language=language,
        difficulty=CLIENTS[client_id][1] * conversation.difficulty,
        repeat_chance=LANGUAGES[language][1],
        base_questions=rng.randint(*conversation.base_questions),
        follow_ups=follow_ups,
    )


@dataclass
class Walk:
    """A session's events as they are simulated, at offsets from its start."""

    rng: random.Random
    profile: Profile
    elapsed: timedelta = timedelta(0)
    state: str = "STARTED"
    steps: list[Step] = field(default_factory=list)
    answers: list[dict[str, str]] = field(default_factory=list)
    # (number of steps when taken, checkpoint)
    checkpoints: list[tuple[int, PlannedCheckpoint]] = field(default_factory=list)

    def wait(self, typical_minutes: float, *, cap: float = 6.0) -> None:
        """A gap of about ``typical_minutes``, long-tailed, at most cap x it."""
        minutes = min(
            typical_minutes * self.rng.lognormvariate(0, 0.5), typical_minutes * cap
        )
        self.elapsed += timedelta(seconds=max(MIN_GAP_SECONDS, round(minutes * 60)))

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        self.steps.append((self.elapsed, kind, payload))

    def enter(self, state: str) -> None:
        self.emit("state_transition", {"state": state})
        self.state = state
        if state in CHECKPOINT_STATES:
            version = len(self.checkpoints) + 1
            checkpoint = PlannedCheckpoint(version, state, self._snapshot())
            self.checkpoints.append((len(self.steps), checkpoint))

    def ask(self, repeat_chance: float) -> bool:
        """One question answered; whether the user asked to hear it again."""
        index = len(self.answers)
        question = self.profile.question(index)
        self.wait(1.0)
        repeated = self.rng.random() < repeat_chance
        if repeated:
            self.emit(
                "question_repeated", {"question_index": index, "question": question}
            )
            self.wait(0.6)
        answer = self.rng.choice(ANSWERS)
        self.emit(
            "question_answered",
            {
                "question_index": index,
                "question": question,
                "answer_length": len(answer),
            },
        )
        self.answers.append({"question": question, "answer": answer})
        return repeated

    def fail(self, error_type: str, message: str) -> None:
        payload = {"error_type": error_type, "stage": self.state, "message": message}
        self.emit("error", payload)

    def _snapshot(self) -> dict[str, Any]:
        return {
            "answers": list(self.answers),
            "progress": round(STAGE_OF_STATE[self.state].index / 4, 2),
            "conversation_type": self.profile.conversation_type,
            "language": self.profile.language,
        }


def walk_session(rng: random.Random, profile: Profile, *, may_drop: bool) -> Walk:
    """A session from its start until it completes or the user leaves."""
    walk = Walk(rng, profile)
    difficulty = profile.difficulty if may_drop else 0.0

    def leaves(chance: float) -> bool:
        return rng.random() < chance * difficulty

    walk.wait(0.2)
    walk.enter("INITIAL_PROMPT")
    if leaves(DROP_BEFORE_QUESTIONS):
        return walk
    walk.wait(1.0)
    walk.enter("COLLECTING_INFO")
    if not _questions(walk, profile.base_questions, leaves):
        return walk
    if profile.follow_ups:
        walk.wait(0.5)
        walk.enter("ASKING_QUESTIONS")
        if not _questions(walk, profile.follow_ups, leaves):
            return walk

    walk.wait(0.5)
    walk.enter("GENERATING_RECOMMENDATIONS")
    if rng.random() < LLM_ERROR_CHANCE * profile.difficulty:
        for _ in range(rng.randint(1, 2)):
            walk.wait(1.0)
            walk.fail(*rng.choices(LLM_ERRORS, weights=LLM_ERROR_WEIGHTS)[0])
            if may_drop and rng.random() < DROP_AFTER_LLM_ERROR:
                return walk
    elif leaves(DROP_GENERATING):
        return walk
    walk.wait(2.0)
    walk.enter("AWAITING_APPROVAL")
    if leaves(DROP_AWAITING):
        return walk
    walk.wait(3.0)
    walk.enter("PENDING_APPROVAL")
    if leaves(DROP_PENDING):
        return walk
    walk.wait(4.0, cap=8.0)
    walk.enter("COMPLETED")
    return walk


def _questions(walk: Walk, count: int, leaves: Callable[[float], bool]) -> bool:
    """Ask ``count`` questions; False when the user leaves on the way."""
    rng, profile = walk.rng, walk.profile
    for _ in range(count):
        repeated = walk.ask(profile.repeat_chance)
        if profile.language != "en" and rng.random() < TRANSLATION_ERROR_CHANCE:
            walk.wait(0.2)
            walk.fail(*TRANSLATION_ERROR)
        if rng.random() < ACTIVITY_CHANCE:
            walk.wait(0.4)
            walk.emit("activity", {"kind": "message_sent"})
        if leaves(DROP_PER_QUESTION + (DROP_AFTER_REPEAT if repeated else 0)):
            return False
    return True


def struggling_walk(rng: random.Random, profile: Profile) -> Walk:
    """A session stuck on repeated questions and failing LLM calls."""
    walk = Walk(rng, profile)
    walk.wait(0.2)
    walk.enter("INITIAL_PROMPT")
    walk.wait(1.0)
    walk.enter("COLLECTING_INFO")
    repeated = set(rng.sample(range(profile.base_questions), k=STRUGGLING_REPEATS))
    for index in range(profile.base_questions):
        walk.ask(1.0 if index in repeated else 0.0)
    walk.wait(0.5)
    walk.enter("GENERATING_RECOMMENDATIONS")
    for _ in range(rng.randint(*STRUGGLING_ERRORS)):
        walk.wait(1.0)
        walk.fail(*rng.choices(LLM_ERRORS, weights=LLM_ERROR_WEIGHTS)[0])
    return walk


def running_prefix(rng: random.Random, walk: Walk) -> Walk:
    """The walk cut at a random point between its first question and its
    completion: what a session still running shows so far."""
    first = next(
        i
        for i, (_, kind, _payload) in enumerate(walk.steps)
        if kind == "question_answered"
    )
    cut = rng.randint(first + 1, len(walk.steps) - 1)
    walk.steps = walk.steps[:cut]
    walk.checkpoints = [(n, c) for n, c in walk.checkpoints if n <= cut]
    walk.state = next(
        p["state"] for _, k, p in reversed(walk.steps) if k == "state_transition"
    )
    return walk
