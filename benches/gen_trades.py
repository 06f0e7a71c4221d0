#!/usr/bin/env python3
"""Writes SIZE_MIB MiB of Hyperliquid `node_trades`-shaped JSON lines to PATH.

Usage: gen_trades.py PATH SIZE_MIB [SEED]

The shape follows testdata/samples/node_trades.jsonl. Fields vary the way a real hour file
does, so the output compresses like real logs rather than like a repeated line:
- `time` increases with nanosecond digits; `px` random-walks per coin on its tick; `sz` varies;
- `hash` is random hex, shared by the fills of one taker order (same coin, side, taker, oid),
  all zeros for TWAP slices;
- the taker comes from a skewed pool of 30k addresses, the maker mostly from a few market makers;
- `start_pos` is the user's running position in that coin; `oid` grows with jitter;
- `cloid` is mostly null, else random hex or a per-user counter; `twap_id` only on TWAP slices.
Deterministic for a given seed. Fast: about 1 s per 10-20 MiB on one core.
"""

import itertools
import random
import sys


def main() -> None:
    path = sys.argv[1]
    target = int(sys.argv[2]) << 20
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)

    def hexs(nbytes: int, count: int) -> list:
        raw = rng.randbytes(nbytes * count).hex()
        step = nbytes * 2
        return ["0x" + raw[i : i + step] for i in range(0, len(raw), step)]

    # (coin, starting price, tick decimals, size decimals, weight)
    coins = [
        ("BTC", 104000.0, 0, 5, 30), ("ETH", 2392.0, 1, 4, 25), ("HYPE", 36.77, 3, 2, 20),
        ("SOL", 145.2, 2, 2, 10), ("@151", 2393.9, 1, 4, 6), ("@107", 36.8, 3, 2, 6),
        ("ZK", 0.12398, 5, 1, 3), ("kPEPE", 0.01102, 6, 0, 3), ("XRP", 2.184, 4, 0, 4),
        ("DOGE", 0.1651, 5, 0, 4), ("FARTCOIN", 1.0721, 4, 1, 2), ("@142", 115865.0, 0, 4, 2),
    ]
    names = [c[0] for c in coins]
    weights = [c[4] for c in coins]
    price = {c[0]: c[1] for c in coins}
    px_dec = {c[0]: c[2] for c in coins}
    sz_dec = {c[0]: c[3] for c in coins}

    # Takers: a large pool with skewed activity. Makers: most fills hit a few market makers.
    users = hexs(20, 30000)
    cum_user = list(itertools.accumulate(1.0 / (i + 1) ** 0.9 for i in range(len(users))))
    makers = hexs(20, 40)
    cum_maker = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(makers))))
    position = {}  # (user, coin) -> position before the next trade
    cloid_counter = {}  # user -> (prefix, counter) for counter-style client ids

    ns = 1750733796_172847427  # 2025-06-24T02:56:36.172847427
    oid = 105686971733
    twap = 822427
    written = 0
    batch = 4096
    with open(path, "w", buffering=1 << 20) as out:
        coin, taker, side, taker_oid, tx_hash = names[0], users[0], "B", oid, hexs(32, 1)[0]
        while written < target:
            coin_pick = rng.choices(names, weights, k=batch)
            taker_pick = rng.choices(users, cum_weights=cum_user, k=batch)
            maker_pick = rng.choices(makers, cum_weights=cum_maker, k=batch)
            hash_pool = hexs(32, batch)
            cloid_pool = hexs(16, batch)
            lines = []
            for i in range(batch):
                r = rng.random()
                if 0.08 <= r < 0.45:
                    # The next fill of the same taker order: same transaction, coin, side, taker.
                    h, twap_id = tx_hash, "null"
                else:
                    coin, taker, side = coin_pick[i], taker_pick[i], "AB"[rng.random() < 0.5]
                    oid += rng.randrange(1, 900)
                    taker_oid = oid
                    if r < 0.08:  # a TWAP slice: zero hash
                        h, twap_id = "0x" + "0" * 64, str(twap + rng.randrange(4000))
                    else:
                        h, twap_id = hash_pool[i], "null"
                    tx_hash = h
                ns += int(rng.expovariate(1 / 1.6e6))  # ~600 trades per second
                secs, frac = divmod(ns, 1_000_000_000)
                # Clock fields without datetime: seconds since 2025-06-24T00:00:00Z.
                day_secs = secs - 1750723200
                hh, rem = divmod(day_secs, 3600)
                mm, ss = divmod(rem, 60)
                hh %= 24
                p = price[coin] * (1 + rng.gauss(0, 0.0004))
                price[coin] = p
                px = f"{p:.{px_dec[coin]}f}"
                size = round(rng.lognormvariate(0, 1.6) * 10 ** (2 - sz_dec[coin]) / 10, sz_dec[coin])
                size = size or 10 ** -sz_dec[coin]
                sz = f"{size:.{sz_dec[coin]}f}"
                infos = []
                # side_info[0] is the buyer, [1] the seller; one of them is the taker.
                taker_first = side == "B"
                for k in range(2):
                    is_taker = (k == 0) == taker_first
                    user = taker if is_taker else maker_pick[i]
                    c = rng.random()
                    if c < 0.75:
                        cloid = "null"
                    elif c < 0.87:
                        cloid = '"' + cloid_pool[i] + '"'
                    else:
                        prefix, counter = cloid_counter.get(user) or (rng.randrange(1 << 32), 0)
                        cloid_counter[user] = (prefix, counter + 1)
                        cloid = f'"0x00000000{prefix:08x}{counter:016x}"'
                    key = (user, coin)
                    pos = position.get(key)
                    if pos is None:
                        pos = round(rng.lognormvariate(0, 2.5) * rng.choice((-1, 1)), sz_dec[coin])
                    position[key] = round(pos + (size if k == 0 else -size), sz_dec[coin])
                    infos.append(
                        f'{{"user":"{user}","start_pos":"{pos:.{max(1, sz_dec[coin])}f}",'
                        f'"oid":{taker_oid if is_taker else oid - rng.randrange(0, 40000)},'
                        f'"twap_id":{twap_id if is_taker else "null"},"cloid":{cloid}}}'
                    )
                lines.append(
                    f'{{"coin":"{coin}","side":"{side}",'
                    f'"time":"2025-06-24T{hh:02d}:{mm:02d}:{ss:02d}.{frac:09d}",'
                    f'"px":"{px}","sz":"{sz}","hash":"{h}","trade_dir_override":"Na",'
                    f'"side_info":[{infos[0]},{infos[1]}]}}\n'
                )
            chunk = "".join(lines)
            if written + len(chunk) > target:
                # Cut on a line boundary at or just past the target.
                cut = chunk.find("\n", target - written) + 1
                chunk = chunk[: cut or len(chunk)]
            out.write(chunk)
            written += len(chunk)


if __name__ == "__main__":
    main()
