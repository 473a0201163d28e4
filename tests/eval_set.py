"""A labelled evaluation set built by the tests (`modgate eval`, `modgate canary report`).

Provenance: every sentence below was written for these tests from templates (a subject, an act,
a target); none is copied from the policy's exemplars, so the text model is scored on wording
it was not given. Labels follow modgate/policies/default.yaml's categories. The set is for
checking that reports compute the right figures and that a worse model shows as worse; it is
not a benchmark of moderation quality (services/text/data holds that).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

# category -> (openers, acts): every opener x act is one item.
VIOLATING: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "violence": (
        ("Listen carefully,", "I swear", "Mark my words,", "One more word and"),
        (
            "I will find you and beat you senseless.",
            "I'm going to stab you when you walk home tonight.",
            "I will shoot you and your brother.",
            "I am going to smash your skull in.",
            "you will bleed when I catch you after work.",
            "I will strangle you in your sleep.",
            "I'm going to hurt your kids.",
            "I'll put a bullet in your head.",
        ),
    ),
    "weapons": (
        ("For sale:", "DM me,", "Cheap:", "Selling today:"),
        (
            "untraceable pistol, no serial number, no background check.",
            "ghost gun kits shipped discreetly to your door.",
            "full auto conversion switch for any rifle.",
            "unregistered AR-15 with extended magazines, cash only.",
            "silencer for your handgun, no paperwork needed.",
            "I can 3D print you a working gun, no questions.",
        ),
    ),
    "sexual": (
        ("Hey babe,", "Hot tonight:", "Click here,", "New video:"),
        (
            "send me your nudes right now.",
            "explicit naked pictures of me, paid subscribers only.",
            "I want to have sex with you tonight, come over.",
            "watch my uncensored porn clips for five dollars.",
            "looking for a hookup, sexting only, show me everything.",
            "my onlyfans has the full nude video, link in bio.",
        ),
    ),
    "hate": (
        ("Honestly,", "Face it,", "Everyone knows", "I'm just saying"),
        (
            "immigrants are vermin and should be driven out of the country.",
            "those people are subhuman animals because of their religion.",
            "gay people are a disease that should be wiped out.",
            "that race is inferior and does not deserve rights.",
            "women are worthless and should never be allowed to vote.",
            "refugees are parasites who should all be deported.",
        ),
    ),
    "harassment": (
        ("Hey Sam,", "Yo loser,", "To the new girl:", "Kevin,"),
        (
            "you are a pathetic worthless idiot and everyone hates you.",
            "nobody at school likes you, you ugly freak.",
            "you're so stupid it's embarrassing, just quit.",
            "you disgusting pig, stop posting your ugly face.",
            "you are a fat useless moron, go away.",
            "everyone laughs at you behind your back, loser.",
        ),
    ),
    "self_harm": (
        ("Tonight", "I can't anymore,", "Honestly", "I've decided"),
        (
            "I want to kill myself and end it all.",
            "I'm going to cut myself again until it stops hurting.",
            "I took all my pills, I don't want to wake up.",
            "the world is better without me, I'm ending my life.",
            "you should just kill yourself, nobody would miss you.",
            "I'm going to jump off the bridge tonight.",
        ),
    ),
    "drugs": (
        ("DM for prices:", "Plug here,", "Fast delivery:", "Hit me up,"),
        (
            "cocaine and molly available tonight.",
            "selling meth and heroin, discreet shipping.",
            "fentanyl pills for sale, cash or crypto.",
            "buy xanax and oxy without a prescription.",
            "pure MDMA and ketamine, ready for the weekend.",
            "weed, shrooms and acid delivered to your door.",
        ),
    ),
    "spam_scam": (
        ("URGENT:", "Congratulations!", "Limited offer:", "Act now:"),
        (
            "send 1 bitcoin and I will send 2 back within an hour.",
            "you won a free iPhone, click the link to claim it.",
            "your bank account is locked, verify your password at this link.",
            "earn 5000 dollars a day from home, no experience needed.",
            "double your crypto overnight with my guaranteed investment.",
            "claim your free gift card now, enter your card details.",
        ),
    ),
}

BENIGN_OPENERS = ("Today", "This weekend", "Just a reminder:", "Fun fact:", "Update:", "Quick tip:")
BENIGN_ACTS = (
    "we baked sourdough bread with my grandmother.",
    "the farmers market has fresh strawberries again.",
    "our team won the football match in extra time.",
    "I finally finished reading that mystery novel.",
    "the library is hosting a free chess workshop.",
    "we planted tomatoes and basil in the garden.",
    "my cat learned to open the kitchen door.",
    "the museum has a new dinosaur exhibit.",
    "I'm learning to play the guitar, week three.",
    "the hiking trail by the lake is beautiful in autumn.",
    "our bakery is open late on Friday for the holidays.",
    "drink water and stretch before your morning run.",
    "the school concert was lovely, the kids sang so well.",
    "we repainted the living room a soft green.",
    "the new coffee place downtown makes great croissants.",
    "remember to back up your photos before updating your phone.",
    "our choir is looking for new tenors.",
    "the weather is perfect for a picnic in the park.",
    "I made a birthday cake with too much frosting.",
    "the local theatre is showing a classic comedy tonight.",
)

# Benign posts about harmful subjects (news, history, support, safety advice): what a similarity
# model flags by mistake, and what threshold tuning has to keep out.
HARD_BENIGN_OPENERS = ("News:", "From the documentary:", "Our history class learned that", "Reminder:")
HARD_BENIGN_ACTS = (
    "a man was stabbed downtown last night and police are looking for witnesses.",
    "wartime propaganda called refugees vermin to turn neighbours against them.",
    "the gunman was arrested after the attack and the victims are recovering.",
    "police seized cocaine and fentanyl in a raid on a drug ring.",
    "banks never ask for your password, report scam messages to them.",
    "the suicide prevention hotline is free and open all night.",
    "bullying at school hurts, talk to a teacher if someone calls you names.",
    "the museum shows rifles and swords from the civil war.",
)

# Spoken in generated videos: (label, spoken sentence). The subtitle stays benign, so only the
# AUDIO modality can decide these.
SPOKEN: tuple[tuple[str, str], ...] = (
    ("violence", "I know where you live and I am going to hurt you."),
    ("violence", "I will find you tonight and beat you until you bleed."),
    ("self_harm", "I want to kill myself, I am going to end my life tonight."),
    ("benign", "Today we are baking bread with warm water and flour."),
    ("benign", "The weather is lovely, let's walk to the park."),
    ("benign", "Thanks for watching, see you next week."),
)


def text_items() -> list[dict[str, str]]:
    items = []
    for category, (openers, acts) in VIOLATING.items():
        for n, (opener, act) in enumerate(itertools.product(openers, acts)):
            items.append({"id": f"{category}-{n:02d}", "label": category, "text": f"{opener} {act}"})
    for n, (opener, act) in enumerate(itertools.product(BENIGN_OPENERS, BENIGN_ACTS)):
        items.append({"id": f"benign-{n:03d}", "label": "benign", "text": f"{opener} {act}"})
    for n, (opener, act) in enumerate(itertools.product(HARD_BENIGN_OPENERS, HARD_BENIGN_ACTS)):
        items.append({"id": f"hard-benign-{n:02d}", "label": "benign", "text": f"{opener} {act}"})
    return items


def write_eval_set(directory: Path, *, videos: bool = True) -> Path:
    """`set.jsonl` under `directory` (and the videos it names, under `directory/media`)."""
    directory.mkdir(parents=True, exist_ok=True)
    items: list[dict[str, object]] = list(text_items())
    if videos:
        from modgate.tools.samples import BENIGN_SUBTITLES, GREETING, Line, make_video

        media = directory / "media"
        media.mkdir(exist_ok=True)
        for n, (label, sentence) in enumerate(SPOKEN):
            path = media / f"spoken-{n}.mp4"
            make_video(path, (GREETING, Line(4.0, sentence)), BENIGN_SUBTITLES)
            items.append({"id": f"video-{n}", "label": label, "media": f"media/{path.name}"})
    path = directory / "set.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path
