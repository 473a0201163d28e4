"""Held-out labelled sentences for the text classifier's acceptance test.

Written for the tests, separately from the policy exemplars (test_text_quality asserts that no
sentence here is, or nearly is, an exemplar). Each sentence carries the set of policy categories
it belongs to; an empty set means benign. Hard negatives (violent idioms, weapon and drug words in
harmless contexts) are in the benign part on purpose.
"""

from __future__ import annotations

LABELLED: list[tuple[str, frozenset[str]]] = []


def _add(category: str | None, sentences: list[str]) -> None:
    labels = frozenset() if category is None else frozenset({category})
    LABELLED.extend((sentence, labels) for sentence in sentences)


_add(
    "violence",
    [
        "I'm going to find you after work and smash your skull in.",
        "Say that again and I'll slit your throat.",
        "One more word and you'll be leaving in an ambulance.",
        "I have your address, expect a visit tonight, you won't like it.",
        "Somebody needs to put a bullet in that politician.",
        "I'll strangle you with my bare hands.",
        "Those protesters deserve to be shot dead in the street.",
        "Next time I see you I'm breaking your legs.",
    ],
)
_add(
    "harassment",
    [
        "You're a braindead clown and nobody likes you.",
        "Honestly you are the most annoying loser on this app.",
        "Look at her teeth, what an ugly troll lol.",
        "Stop posting, you talentless idiot, you embarrass yourself.",
        "Everyone in class thinks you're a creepy weirdo.",
        "You're a pathetic excuse for a human being.",
        "Imagine being this fat and still thinking you're cute.",
        "Go away, no one asked for your stupid opinion.",
    ],
)
_add(
    "hate",
    [
        "Refugees are parasites who are destroying this nation.",
        "Black people are subhuman and shouldn't be allowed here.",
        "All Mexicans are criminals and rapists.",
        "Those Muslims are savages who should be deported.",
        "Gays are perverts who should be locked up.",
        "Jews are rats and the world would be better without them.",
        "Females are brainless and only good for cleaning.",
        "Asians are disgusting, get them out of our country.",
    ],
)
_add(
    "self_harm",
    [
        "I just want to fall asleep and never wake up.",
        "Tonight is my last night, I've written my goodbye letter.",
        "I keep cutting my wrists when I feel empty.",
        "What's the most painless way to kill myself?",
        "I'm starving myself until I disappear.",
        "Life is pointless, I'm planning to end it this weekend.",
        "I'm so tired of living, I'm ready to be gone.",
    ],
)
LABELLED.append(("You're worthless, just go hang yourself.", frozenset({"self_harm", "harassment"})))
_add(
    "sexual",
    [
        "Send me pics of you in the shower, babe.",
        "My private videos are uncensored, subscribe to see everything.",
        "Horny girls in your area want to meet you tonight.",
        "I want to rip your clothes off and have sex with you right now.",
        "Show me your naked body on cam.",
        "Selling my used underwear and nude photos, DM.",
        "Looking for a fwb, must be discreet.",
    ],
)
LABELLED.append(("XXX full length adult movies free, click here.", frozenset({"sexual", "spam_scam"})))
_add(
    "drugs",
    [
        "Got ketamine and MDMA, delivering all night, text me.",
        "Plug has fresh weed and carts, prices in DMs.",
        "Let's snort some lines before the party.",
        "Selling percs and oxys, no script needed.",
        "Heroin shipped discreetly anywhere in the country.",
        "Who has LSD? Looking to trip this weekend.",
        "Buy crystal meth here, best quality.",
        "I can hook you up with adderall and xans, cashapp only.",
    ],
)
_add(
    "spam_scam",
    [
        "Earn 2000 dollars a day from your phone, no experience, click now!",
        "Your bank account has been suspended, log in here to restore access.",
        "Send 0.1 BTC and receive 1 BTC back instantly, limited time only.",
        "You have been selected for a $1000 Walmart gift card, claim now.",
        "My crypto mentor turned 500 into 50k, message him on WhatsApp.",
        "Free likes for your account, just enter your password at this site.",
        "Final notice: pay your unpaid toll fee via this link or face penalties.",
        "Invest in this coin now, guaranteed 10x by next week.",
    ],
)
_add(
    "weapons",
    [
        "Unregistered AR-15 for sale, no questions asked.",
        "Step-by-step guide to 3D printing a working pistol.",
        "Anyone selling a glock? I'll pay cash, no paperwork.",
        "I've got switches and extended mags for sale.",
    ],
)
_add(
    None,
    [
        # Hard negatives: violent idioms and risky words in harmless contexts.
        "The band absolutely killed it on stage last night.",
        "We're going to shoot the music video downtown on Saturday.",
        "I'd murder a slice of pizza right now.",
        "This exam is going to kill me, so much studying.",
        "My little brother destroyed me at chess again.",
        "I'm dead, this meme is hilarious.",
        "What lens do you use to shoot portraits?",
        "She slayed that performance, wow.",
        "Our team got crushed but we'll be back next week.",
        "The chef's knife skills in this video are amazing.",
        "Going hunting with my dad this fall, first time.",
        "Ways to support a friend who is struggling with depression.",
        "The documentary explains how addiction affects families.",
        "My doctor switched my blood pressure medication.",
        "The villain in this movie was terrifying.",
        "Bro this beat goes hard.",
        "This puzzle game is so addictive.",
        "The history of the Roman army explained.",
        # Ordinary benign posts.
        "Just finished a 10k run, feeling great.",
        "Homemade sourdough bread recipe, step by step.",
        "Sunset over the lake, no filter.",
        "Can't wait for the concert tomorrow!",
        "How to change the oil in your car.",
        "My dog learned to roll over today.",
        "Top 10 travel destinations for next summer.",
        "Vote for your favourite cosplay in the comments.",
        "Baby's first steps, so proud.",
        "Reviewing the cheapest gaming laptop on the market.",
        "Thank you all for 100k subscribers!",
        "Grandpa telling stories about his time in the navy.",
        "Quick 15 minute yoga routine for beginners.",
        "Unboxing my new camera lens.",
        "Dinner with friends at our favourite taco place.",
        "Learning to cook Thai curry from scratch.",
        "The new season of this show is fire.",
        "Free shipping on all orders over 50 dollars this week.",
    ],
)
