"""Who the demo's users are and what their conversations say."""

from __future__ import annotations

from dataclasses import dataclass

# Client id: (share of the users, how much harder than usual its onboarding
# is, which scales every chance to leave).
CLIENTS: dict[int, tuple[float, float]] = {
    1: (0.30, 0.9),
    2: (0.25, 1.0),
    3: (0.20, 1.5),
    4: (0.15, 0.8),
    5: (0.10, 1.2),
}
# Language tag: (share of the sessions, chance a question is asked again).
LANGUAGES: dict[str, tuple[float, float]] = {
    "en": (0.45, 0.04),
    "es": (0.15, 0.06),
    "hi": (0.15, 0.12),
    "fr": (0.12, 0.06),
    "pt-BR": (0.13, 0.07),
}


@dataclass(frozen=True)
class Conversation:
    """One conversation type of the onboarding product."""

    # Share of the sessions.
    weight: float
    # How much harder than a site survey it is (scales drop-off chances).
    difficulty: float
    # Questions asked while COLLECTING_INFO, and follow-ups while
    # ASKING_QUESTIONS (for about six sessions in ten), as inclusive ranges.
    base_questions: tuple[int, int]
    follow_ups: tuple[int, int]
    questions: tuple[str, ...]


CONVERSATIONS: dict[str, Conversation] = {
    "site_survey": Conversation(
        weight=0.6,
        difficulty=1.0,
        base_questions=(6, 9),
        follow_ups=(1, 3),
        questions=(
            "What is the site name?",
            "Where is the site located?",
            "How many people work at the site?",
            "Which shifts does the site run?",
            "What equipment is on site?",
            "Who is the site manager?",
            "Which safety certifications does the site hold?",
            "How is the site accessed?",
            "What are the site's opening hours?",
            "Which areas need regular inspection?",
            "How are incidents reported today?",
            "Which suppliers deliver to the site?",
        ),
    ),
    "business_unit_setup": Conversation(
        weight=0.4,
        difficulty=1.3,
        base_questions=(9, 12),
        follow_ups=(1, 4),
        questions=(
            "What is the business unit called?",
            "Which country does it operate in?",
            "How many employees does it have?",
            "Who approves purchases?",
            "Which cost centres does it use?",
            "Which currency does it invoice in?",
            "How often does it invoice customers?",
            "Which departments does it have?",
            "Who are its main customers?",
            "Which systems does it use today?",
            "What are its reporting deadlines?",
            "Who should receive the monthly reports?",
            "Which tax registrations does it hold?",
            "What approval limits apply?",
            "Which languages do its staff speak?",
            "Which regions does it serve?",
        ),
    ),
}

ANSWERS = (
    "Factory A",
    "Mumbai, Andheri East",
    "About 120 people",
    "Two shifts, 6:00 to 22:00",
    "Forklifts, two cranes and a paint line",
    "Priya Sharma",
    "ISO 9001 and ISO 45001",
    "Gate 3 with a badge",
    "Every month, on the first working day",
    "EUR",
    "Finance, Sales and Operations",
    "SAP and a few spreadsheets",
    "By email to the safety officer",
    "Yes",
    "Not yet",
    "Lisbon and Porto",
)

# (error_type, message) of failed LLM calls while recommendations are made.
LLM_ERRORS = (
    ("LLM_TIMEOUT", "The model did not answer within 60 seconds"),
    ("LLM_RATE_LIMIT", "The model provider's rate limit was exceeded"),
)
TRANSLATION_ERROR = ("TRANSLATION_FAILED", "The question could not be translated")

# Languages the translation task serves, by session language.
TRANSLATION_TARGETS = {"es": "es", "fr": "fr", "pt-BR": "pt"}
