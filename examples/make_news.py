"""Write news.jsonl and news.csv: a made-up news feed for `app monitor` (seeded).

    python examples/make_news.py   # rewrites both files next to this script

Three companies (tickers ACME, BOLT, CORE) over two weeks of March 2024, 20 headlines a
day each, in time order. About one headline in ten is bad news, except on day 11, when
eight in ten about ACME are: the surge the monitor should alert on. The headlines are
written for this project; the companies are invented.

news.jsonl names its columns `published_at`, `ticker` and `headline` (a feed's own names,
mapped with `--set monitor.columns.time=published_at` ...); news.csv holds the same rows
under the names the monitor reads by default, `time`, `entity` and `text`.
"""
from __future__ import annotations

import csv
import json
import random
from pathlib import Path

COMPANIES = {"ACME": "Acme Steel", "BOLT": "Bolt Energy", "CORE": "Core Pharma"}
BAD = [
    "{name} shares fell sharply after a profit warning.",
    "{name} cut its full-year outlook as orders dried up.",
    "Regulators opened an investigation into {name}'s accounts.",
    "{name} will close two plants and cut 900 jobs.",
    "{name} missed quarterly earnings forecasts by a wide margin.",
    "A ratings agency downgraded {name} to junk.",
    "{name} suspended its dividend to preserve cash.",
    "{name}'s chief executive resigned amid an accounting probe.",
]
CALM = [
    "{name} will publish its quarterly report on 30 April.",
    "{name} appointed a new head of investor relations.",
    "{name} is based in Rotterdam and employs 4,000 people.",
    "{name} will hold its annual general meeting in May.",
    "{name} opened a new office in Singapore.",
    "{name} won a EUR 40 million supply contract.",
    "{name}'s quarterly sales rose 6%, in line with forecasts.",
    "{name} completed the sale of a small unit as planned.",
    "{name} launched an updated product range for retailers.",
    "{name}'s board proposed an unchanged dividend.",
]
DAYS, PER_DAY, SURGE = 14, 20, ("ACME", 10)  # day index 10 is 11 March


def rows(seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for day in range(DAYS):
        for hour in range(PER_DAY):
            for ticker, name in COMPANIES.items():
                share = 0.8 if (ticker, day) == SURGE else 0.1
                pool = BAD if rng.random() < share else CALM
                out.append({"published_at": f"2024-03-{day + 1:02d}T{hour:02d}:15:00Z",
                            "ticker": ticker, "headline": rng.choice(pool).format(name=name)})
    return out


def write(folder: Path) -> None:
    feed = rows()
    with open(folder / "news.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(row) + "\n" for row in feed)
    with open(folder / "news.csv", "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["time", "entity", "text"])
        writer.writerows([r["published_at"], r["ticker"], r["headline"]] for r in feed)


if __name__ == "__main__":
    write(Path(__file__).resolve().parent)
