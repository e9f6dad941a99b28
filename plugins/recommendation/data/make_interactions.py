"""Generate a synthetic user-item interaction log for the recommendation sample.

Reads items.csv (next to this script) and writes interactions.csv with header
user_id,item_id,rating,timestamp.

How the data is simulated:
  * every user has 1-3 preferred categories (stable tastes);
  * each user has 8-30 interactions (fewer for single-category users, whose
    category is small), ~80% drawn from the preferred categories and ~20% from
    the whole catalogue;
  * items carry a hidden popularity weight, so some are picked more often;
  * preferred-category items tend to be rated 4-5, other items 1-3;
  * timestamps are unix seconds in 2025 and strictly increase per user;
  * ~10% of items (spread over all categories) never appear at all, so they
    can be used for cold-start evaluation: only their text describes them;
  * no user interacts with the same item twice.

Standard library only; seeded, so rerunning gives the same file.
    python make_interactions.py
"""

import csv
import random
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

SEED = 7
N_USERS = 300
MIN_PER_USER, MAX_PER_USER = 8, 30
PREFERRED_SHARE = 0.8  # chance that one interaction is drawn from preferred categories
COLD_SHARE = 0.10  # share of items that get no interactions at all

YEAR_START = int(datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp())
YEAR_END = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())
DAY = 24 * 3600

HERE = Path(__file__).resolve().parent
ITEMS_PATH = HERE / "items.csv"
OUT_PATH = HERE / "interactions.csv"


def load_items(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def pick_cold_items(rng, by_category, n_cold):
    """Choose n_cold items, cycling over the categories so every category gets some."""
    categories = sorted(by_category)
    rng.shuffle(categories)
    cold = set()
    for k in range(n_cold):
        category = categories[k % len(categories)]
        candidates = [i for i in by_category[category] if i not in cold]
        cold.add(rng.choice(candidates))
    return cold


def draw_item(rng, pool, seen, popularity):
    """Draw one unseen item from pool, weighted by popularity (None if pool is used up)."""
    candidates = [i for i in pool if i not in seen]
    if not candidates:
        return None
    weights = [popularity[i] for i in candidates]
    return rng.choices(candidates, weights=weights)[0]


def draw_rating(rng, preferred):
    if preferred:
        return rng.choices([3, 4, 5], weights=[12, 45, 43])[0]
    return rng.choices([1, 2, 3, 4], weights=[25, 40, 28, 7])[0]


def main():
    rng = random.Random(SEED)
    items = load_items(ITEMS_PATH)
    category_of = {row["item_id"]: row["category"] for row in items}

    by_category = defaultdict(list)
    for row in items:
        by_category[row["category"]].append(row["item_id"])
    categories = sorted(by_category)

    # Hidden popularity: a mildly heavy-tailed weight per item.
    popularity = {row["item_id"]: rng.lognormvariate(0.0, 0.8) for row in items}

    cold = pick_cold_items(rng, by_category, round(COLD_SHARE * len(items)))
    warm_all = [row["item_id"] for row in items if row["item_id"] not in cold]

    rows = []
    for u in range(1, N_USERS + 1):
        user_id = f"u{u:03d}"
        n_pref = rng.choices([1, 2, 3], weights=[30, 45, 25])[0]
        preferred = set(rng.sample(categories, n_pref))
        warm_pref = [i for i in warm_all if category_of[i] in preferred]

        # Cap the history so ~80% of it can really come from the preferred pool
        # (a single category only has about a dozen usable items).
        max_n = min(MAX_PER_USER, int(len(warm_pref) / PREFERRED_SHARE))
        n = rng.randint(MIN_PER_USER, max_n)
        seen = []
        while len(seen) < n:
            pool = warm_pref if rng.random() < PREFERRED_SHARE else warm_all
            item = draw_item(rng, pool, seen, popularity)
            if item is None:  # preferred items used up: fall back to the catalogue
                item = draw_item(rng, warm_all, seen, popularity)
            seen.append(item)

        # Strictly increasing timestamps within 2025, starting at a random date.
        first = rng.randint(YEAR_START, YEAR_START + 240 * DAY)
        times = sorted(rng.sample(range(first, YEAR_END), n))

        for item, ts in zip(seen, times):
            rating = draw_rating(rng, category_of[item] in preferred)
            rows.append((user_id, item, rating, ts))

    with open(OUT_PATH, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        writer.writerows(rows)

    print(f"wrote {len(rows)} interactions for {N_USERS} users to {OUT_PATH.name}; "
          f"{len(cold)} cold-start items")


if __name__ == "__main__":
    main()
