"""A long run: simulated users mixing every action against the real app, for minutes.

    python bench/soak.py                       # 8 users, 10 minutes
    python bench/soak.py --users 4 --minutes 1 # a quick look

The app runs in this process on 127.0.0.1 (as in the tests), over a temporary library holding the
sample images; Gemini is the loopback fake server, answering images, 429s (retried) and outages.
Each user signs in with an account of its own (``--users FILE``) and picks actions at random:
searches, asset pages, tags, uploads, generations and refinements in its sessions, its session
list (checked to hold only its own sessions), deletes of its own uploads, library pages and stats. The table gives requests,
errors and p50/p95 per action; errors that are the app's fault are counted apart from refusals
the app is right to give (an outage the model had, a rate limit that outlasted the retries).
RSS is this process's, so it includes Milvus Lite and the model. Targets: no error that is the
app's fault, RSS growth under 10 % after warm-up, search p95 under 1 s with 8 users.
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from common import ROOT, choose_model, percentile, preamble, quiet_logs, rss_mb, table

# Right answers to what the simulation does: outages and rate limits of the fake Gemini, a full
# queue, and a user picking an image another user has just deleted.
EXPECTED = ("Gemini had a server error", "rate limit", "busy", "Queue is full", "already running",
            "no longer in the library", "is missing on disk")
QUERIES = ["a red car", "a bowl of soup", "a cartoon animal", "a house with a roof", "a hammer", "fruit", "a tree"]
WEIGHTS = {"search": 36, "asset": 10, "tag": 4, "library": 8, "stats": 5, "upload": 8, "generate": 10, "refine": 6,
           "sessions": 6, "delete": 7}
PASSWORD = "soak-pw"


def png(seed: int) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    img = Image.new("RGB", (64, 64), tuple(rng.randrange(256) for _ in range(3)))
    img.putpixel((rng.randrange(64), rng.randrange(64)), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


class User(threading.Thread):
    def __init__(self, n: int, url: str, deadline: float, work: Path, results: dict, lock: threading.Lock) -> None:
        super().__init__(name=f"user-{n}", daemon=True)
        self.n, self.url, self.deadline, self.work, self.results, self.lock = n, url, deadline, work, results, lock
        self.rng = random.Random(n)
        self.name = f"soak{n}"
        self.mine: list[str] = []  # uploads it may delete
        self.seen: list[str] = []  # asset ids from its searches, for asset pages and tags
        self.session = ""

    def run(self) -> None:
        from gradio_client import Client, handle_file

        client = Client(self.url, auth=(self.name, PASSWORD), verbose=False)
        actions, weights = zip(*WEIGHTS.items())
        needs = {"delete": "mine", "asset": "seen", "tag": "seen", "refine": "session"}
        i = 0
        while time.monotonic() < self.deadline:
            action = self.rng.choices(actions, weights)[0]
            if action in needs and not getattr(self, needs[action]):
                continue  # nothing of its own to act on yet
            i += 1
            start = time.perf_counter()
            try:
                self.act(client, handle_file, action, i)
                outcome = "ok"
            except Exception as exc:  # noqa: BLE001 - every failure is counted and classified
                outcome = "expected" if any(e in str(exc) for e in EXPECTED) else f"error: {str(exc)[:120]}"
            with self.lock:
                self.results[action].append((time.perf_counter() - start, outcome))

    def act(self, client, handle_file, action: str, i: int) -> None:  # noqa: ANN001 - gradio_client types
        if action == "search":
            hits = client.predict(text=self.rng.choice(QUERIES), k=12, api_name="/search")
            self.seen = [h["id"] for h in hits] or self.seen
        elif action == "asset":
            client.predict(self.rng.choice(self.seen), api_name="/asset")
        elif action == "tag":
            client.predict(self.rng.choice(self.seen), [f"soak-{self.n}"], True, api_name="/tag")
        elif action == "library":
            client.predict([], [], api_name="/library")
        elif action == "stats":
            client.predict(api_name="/stats")
        elif action == "upload":
            path = self.work / f"u{self.n}-{i}.png"
            path.write_bytes(png(self.n * 100_000 + i))
            client.predict([handle_file(str(path))], f"soak-{self.n}", [], [], api_name="/ingest")
            self.mine = [r["id"] for r in client.predict([f"soak-{self.n}"], [], api_name="/library")]
        elif action == "generate":
            refs = self.rng.sample(self.seen, min(len(self.seen), 2))
            self.session = client.predict("a banana on a marble counter", refs, "1:1", 1, api_name="/generate")["session_id"]
        elif action == "refine":
            client.predict(self.session, "make it brighter", api_name="/refine")
        elif action == "sessions":
            owners = {s["user"] for s in client.predict(20, api_name="/sessions")}
            if owners - {self.name}:
                raise RuntimeError(f"sessions of other users listed: {sorted(owners - {self.name})}")
            if self.session:
                client.predict(self.session, api_name="/session")
        elif action == "delete":
            client.predict([self.mine.pop()], api_name="/delete")


def fake_gemini_mix():  # noqa: ANN201
    """Mostly images, some 429s that the retries absorb, an occasional outage: a scripted random mix."""
    from tests.fake_gemini import FakeGemini, error_reply, image_reply, png_bytes, rate_limit_reply

    good = image_reply(png_bytes())
    fake = FakeGemini(keep=20).always(good).start()
    rng = random.Random(7)
    mix = [rate_limit_reply("0.2s") if (r := rng.random()) < 0.10
           else error_reply(503, "UNAVAILABLE", "The model is overloaded.") if r < 0.15 else good for _ in range(20_000)]
    return fake.push(*mix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=60.0,
                        help="seconds before the RSS baseline is taken (every action has run by then)")
    args = parser.parse_args()
    print(choose_model())
    quiet_logs()
    preamble()
    from rag.core import Settings
    from rag.studio import Studio
    from tests.appserver import running_app

    fake = fake_gemini_mix()
    with tempfile.TemporaryDirectory(prefix="banana-soak-") as tmp:
        accounts = Path(tmp) / "users.txt"
        accounts.write_text("".join(f"soak{n}:{PASSWORD}\n" for n in range(args.users)))
        settings = Settings.from_env().with_(
            data_dir=Path(tmp), milvus_uri=str(Path(tmp) / "milvus.db"), library_dir=Path(tmp) / "library",
            outputs_dir=Path(tmp) / "outputs", gemini_api_key="soak-key", gemini_base_url=fake.base_url, gemini_retries=2,
            users_file=str(accounts),
        )
        studio = Studio(settings)
        studio.ingest_folder(ROOT / "assets" / "sample")
        rss_start = rss_mb()
        results: dict[str, list] = defaultdict(list)
        lock = threading.Lock()
        with running_app(studio) as url:
            deadline = time.monotonic() + args.minutes * 60
            users = [User(n, url, deadline, Path(tmp), results, lock) for n in range(args.users)]
            for u in users:
                u.start()
            time.sleep(min(args.warmup, args.minutes * 30))
            rss_warm = rss_mb()
            trend = [rss_warm]
            while any(u.is_alive() for u in users):
                for u in users:
                    u.join(timeout=60 / len(users))
                trend.append(rss_mb())
            rss_end = trend[-1]
            print("RSS each minute after warm-up (MB):", " ".join(f"{r:.0f}" for r in trend))
        studio.close()
    fake.stop()
    report(results, rss_start, rss_warm, rss_end, args)


def report(results: dict, rss_start: float, rss_warm: float, rss_end: float, args: argparse.Namespace) -> None:
    rows, faults = [], []
    for action, runs in sorted(results.items()):
        times = [t * 1000 for t, _ in runs]
        errors = [o for _, o in runs if o.startswith("error")]
        faults += errors
        rows.append({"action": action, "requests": len(runs), "app errors": len(errors),
                     "refused (expected)": sum(o == "expected" for _, o in runs),
                     "p50 ms": percentile(times, 50), "p95 ms": percentile(times, 95)})
    print(f"\n{args.users} users for {args.minutes:g} min:")
    print(table(rows))
    growth = (rss_end - rss_warm) / rss_warm * 100
    print(f"\nRSS: {rss_start:.0f} MB at start, {rss_warm:.0f} MB after warm-up, {rss_end:.0f} MB at the end ({growth:+.1f} %)")
    for fault in sorted(set(faults))[:10]:
        print("  app error:", fault)
    search_p95 = next((r["p95 ms"] for r in rows if r["action"] == "search"), 0.0)
    print(f"RESULT soak users={args.users} minutes={args.minutes:g} requests={sum(r['requests'] for r in rows)} "
          f"app_errors={len(faults)} rss_growth_pct={growth:.1f} search_p95_ms={search_p95:.0f}")


if __name__ == "__main__":
    main()
