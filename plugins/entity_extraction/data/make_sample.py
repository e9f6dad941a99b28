"""Write sample.jsonl: 1,200 sentences with PER, ORG, LOC and PRODUCT spans (seeded).

    python make_sample.py   # rewrites sample.jsonl next to this file

Hand-written templates from three domains (support tickets, financial news, product
mentions) are filled from hand-written name lists; the companies, people and products
are invented. Each line is {"text": ..., "spans": [{"start", "end", "label"}]}.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

# Names are combined from parts, so most entities of the evaluation split never occur in
# training: the model must generalise from context, and a gazetteer cannot simply recall.
GIVEN = ["Alice", "Rahul", "Sofia", "Daniel", "Mei", "Tom", "Laura", "Ivan", "Hannah", "Kwame",
         "Chloe", "Priya", "Marco", "Emma", "Jonas", "Fatima", "Lucas", "Nora", "Oliver", "Aisha",
         "Carmen", "Pieter", "Yusuf", "Grace", "Ethan", "Leila", "Mateo", "Ingrid", "Samuel",
         "Zara", "Felix", "Amara", "Hugo", "Elena", "Kenji", "Maya", "Omar", "Clara", "Diego"]
FAMILY = ["Moreau", "Mehta", "Lindqvist", "Okafor", "Tanaka", "Becker", "Gómez", "Petrov",
          "Schultz", "Mensah", "Martin", "Nair", "Rossi", "Clarke", "Weber", "Haddad", "Silva",
          "Jensen", "Grant", "Bello", "Ruiz", "de Vries", "Demir", "Liu", "Brooks", "Novak",
          "Kowalski", "Dubois", "Fischer", "Andersson", "Costa", "Ibrahim", "Walsh", "Park",
          "Horvat", "Jovanovic", "Adeyemi", "Sato", "Lambert", "O'Brien"]
BRAND = ["Acme", "Northwind", "Helix", "Brightline", "Orbital", "Kestrel", "Bluefin", "Vantage",
         "Solara", "Granite", "Meridian", "Quantis", "Redwood", "Atlas", "Nimbus", "Harbor",
         "Crescent", "Polaris", "Evergreen", "Summit", "Cobalt", "Juniper", "Lighthouse",
         "Silverline", "Tandem", "Arcadia", "Pinnacle", "Riverstone", "Sterling", "Aster"]
KIND = ["Logistics", "Bank", "Pharma", "Energy", "Systems", "Motors", "Capital", "Telecom",
        "Foods", "Insurance", "Airlines", "Software", "Retail", "Mining", "Cloud", "Media",
        "Health", "Group", "Holdings", "Labs", "Partners", "Industries"]
MODEL_NAME = ["Nova", "AirFlow", "PixelPad", "Zenith", "CloudSync", "TrackMate", "Aurora",
              "EchoBuds", "VoltCharger", "Ledger", "StreamBox", "Falcon", "SmartThermo",
              "QuickPay", "OfficeSuite", "Orion", "HydroBottle", "Titan", "Comet", "Lumen",
              "Vortex", "Skylink", "Pulse", "Quasar", "Breeze", "Sentinel", "Mosaic"]
MODEL_SUFFIX = ["", "", " Pro", " Mini", " X2", " 300", " 4K", " Max", " S", " Plus", " 12"]
LOC = ["Paris", "Berlin", "Lagos", "Toronto", "Singapore", "Madrid", "Oslo", "Nairobi", "Chicago",
       "Melbourne", "Lisbon", "Warsaw", "Dubai", "Seoul", "Rotterdam", "Austin", "Lyon",
       "São Paulo", "Mumbai", "Dublin", "Texas", "Bavaria", "Ontario", "Scotland", "Vietnam",
       "Kraków", "Accra", "Osaka", "Denver", "Manchester", "Bogotá", "Cape Town", "Helsinki",
       "Marseille", "Jakarta", "Vancouver", "Casablanca", "Munich", "Brisbane", "Porto",
       "Hamburg", "Quebec", "Chile", "Kenya", "Norway", "New Zealand", "Milan", "Seattle"]
PER = [f"{g} {f}" for g in GIVEN for f in FAMILY]
FIRST = GIVEN
ORG = [f"{b} {k}" for b in BRAND for k in KIND]
PRODUCT = [f"{m}{s}" for m in MODEL_NAME for s in dict.fromkeys(MODEL_SUFFIX)]
AMOUNT = ["$4.2 million", "12%", "3.5 billion euros", "$780,000", "18 percent", "two-thirds"]
DAY = ["on Monday", "on Tuesday", "last week", "this morning", "on Friday", "yesterday",
       "in March", "in the third quarter", "earlier today"]

SUPPORT = [
    "Hello, {PER} again. Still waiting on the {PRODUCT} refund from {DAY}.",
    "Our office in {LOC} cannot log in to {PRODUCT} since the {ORG} outage.",
    "Who do I talk to about a damaged {PRODUCT}? The box came from your {LOC} warehouse.",
    "Escalating to {PER}: customer in {LOC} reports the {PRODUCT} overheats.",
    "{FIRST} said a new {PRODUCT} would be sent {DAY}, but the tracking shows nothing.",
    "We use {PRODUCT} at {ORG} and the export to {PRODUCT} fails every night.",
    "My {PRODUCT} stopped charging after two days, can someone from {ORG} call me back?",
    "Hi, this is {PER}. The {PRODUCT} I ordered was delivered to {LOC} instead of my home.",
    "Order for {PRODUCT} still not shipped; I live in {LOC} and paid for express delivery.",
    "{FIRST} from your {LOC} office promised a refund for the {PRODUCT} but nothing arrived.",
    "The latest update broke {PRODUCT} on my laptop, please escalate to {ORG} engineering.",
    "Can I return a {PRODUCT} bought in {LOC} at a store in {LOC}?",
    "I was charged twice for {PRODUCT}. My account manager is {PER}.",
    "{PER} here: the {PRODUCT} keeps disconnecting from the {PRODUCT} since {DAY}.",
    "Please cancel my {PRODUCT} subscription, I am moving to {LOC} next month.",
    "Support ticket: {PRODUCT} screen flickers, purchased from {ORG} {DAY}.",
    "Thanks {FIRST}, the replacement {PRODUCT} works fine now.",
    "Your technician {PER} never showed up at our {LOC} site {DAY}.",
    "Is the {PRODUCT} compatible with {PRODUCT}? Asking for our team at {ORG}.",
    "The courier {ORG} lost my parcel with the {PRODUCT} somewhere near {LOC}.",
    "I'd like to upgrade from {PRODUCT} to {PRODUCT}, what does it cost?",
    "Warranty claim for a {PRODUCT}, serial number attached, contact {PER}.",
]
FINANCE = [
    "Shares of {ORG} fell {AMOUNT} in {LOC} trading {DAY}.",
    "{PER} joined {ORG} from {ORG}, where she ran the {LOC} business.",
    "The {LOC} unit of {ORG} was sold to {ORG} for {AMOUNT}.",
    "Investors in {LOC} welcomed the appointment of {PER} as chief executive of {ORG}.",
    "{ORG} expects profit to rise {AMOUNT} next year, chairman {PER} told reporters in {LOC}.",
    "{ORG} shares rose {AMOUNT} {DAY} after the company raised its outlook.",
    "{ORG} agreed to buy {ORG} for {AMOUNT}, chief executive {PER} said.",
    "{PER}, chief financial officer of {ORG}, will step down at the end of the year.",
    "{ORG} opened a new plant in {LOC}, creating 400 jobs.",
    "Analysts at {ORG} cut their rating on {ORG} {DAY}.",
    "Revenue at {ORG} fell {AMOUNT} as demand for the {PRODUCT} slowed in {LOC}.",
    "{ORG} said {DAY} it would move its headquarters from {LOC} to {LOC}.",
    "Regulators in {LOC} fined {ORG} {AMOUNT} over late disclosures.",
    "{ORG} named {PER} as its new chair, replacing {PER}.",
    "Sales of the {PRODUCT} helped {ORG} beat forecasts in {LOC}.",
    "{ORG} and {ORG} will merge their operations in {LOC}, pending approval.",
    "Fund manager {PER} of {ORG} bought a stake worth {AMOUNT}.",
    "{ORG} reported a net loss {DAY}, hit by higher costs in {LOC}.",
    "Bonds issued by {ORG} gained after {PER} ruled out new borrowing.",
    "{ORG} will list its shares in {LOC}, said {PER}, who leads the offering.",
    "Strikes at the {LOC} port delayed shipments for {ORG} {DAY}.",
]
PRODUCTS = [
    "Hands-on with the {PRODUCT}: {ORG} finally fixed the battery.",
    "The {PRODUCT} costs less in {LOC} than anywhere else, says {PER}.",
    "{PER} switched from the {PRODUCT} to the {PRODUCT} and never looked back.",
    "{ORG} will stop selling the {PRODUCT} in {LOC} {DAY}.",
    "The {PRODUCT} from {ORG} goes on sale in {LOC} {DAY}.",
    "Reviewers praised the {PRODUCT}, calling it the best thing {ORG} has made.",
    "{ORG} recalled 20,000 units of the {PRODUCT} because of a battery fault.",
    "{PER} demonstrated the {PRODUCT} at a launch event in {LOC}.",
    "Early buyers say the {PRODUCT} is lighter than the {PRODUCT}.",
    "{ORG} cut the price of the {PRODUCT} to compete with {ORG}.",
    "We compared the {PRODUCT} and the {PRODUCT} for a week in {LOC}.",
    "The {PRODUCT} was designed in {LOC} by a team led by {PER}.",
    "Stock of the {PRODUCT} ran out in {LOC} within hours.",
    "{ORG} confirmed that {PRODUCT} will get a software update {DAY}.",
    "According to {PER}, the {PRODUCT} will ship with {PRODUCT} included.",
    "Shoppers in {LOC} queued overnight for the {PRODUCT}.",
]
SLOT = re.compile(r"\{(PER|FIRST|ORG|LOC|PRODUCT|AMOUNT|DAY)\}")
POOLS = {"PER": PER, "FIRST": FIRST, "ORG": ORG, "LOC": LOC, "PRODUCT": PRODUCT,
         "AMOUNT": AMOUNT, "DAY": DAY}
LABELS = {"PER": "PER", "FIRST": "PER", "ORG": "ORG", "LOC": "LOC", "PRODUCT": "PRODUCT"}


def build(template: str, rng: random.Random, slots: re.Pattern, pick, labels: dict) -> dict:
    """One sentence built piece by piece: each slot filled with ``pick(slot, used, rng)``
    (distinct values within a sentence), a span recorded for each slot in ``labels``."""
    text, spans, used, position = "", [], set(), 0
    for match in slots.finditer(template):
        slot = match.group(1)
        value = pick(slot, used, rng)
        used.add(value)
        text += template[position:match.start()]
        if slot in labels:
            spans.append({"start": len(text), "end": len(text) + len(value), "label": labels[slot]})
        text += value
        position = match.end()
    return {"text": text + template[position:], "spans": spans}


def fill(template: str, rng: random.Random) -> dict:
    """One sentence: every slot filled (distinct values within a sentence), with spans."""
    return build(template, rng, SLOT,
                 lambda slot, used, r: r.choice([v for v in POOLS[slot] if v not in used]), LABELS)


def write(templates: list[str], fill, count: int, seed: int, name: str) -> None:
    """``count`` distinct sentences, the templates taken in turn, shuffled, to ``name``."""
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < count:
        row = fill(templates[len(rows) % len(templates)], rng)
        if row["text"] not in seen:
            seen.add(row["text"])
            rows.append(row)
    rng.shuffle(rows)
    out = Path(__file__).parent / name
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} sentences to {out}")


def main(count: int = 1200, seed: int = 7) -> None:
    write(SUPPORT + FINANCE + PRODUCTS, fill, count, seed, "sample.jsonl")


if __name__ == "__main__":
    main()
