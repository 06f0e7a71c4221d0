#!/usr/bin/env python3
"""The straightforward Python way to load JSON lines into MongoDB, for benches/mongo.sh.

Usage: pymongo_insert.py URI DATABASE COLLECTION FILE [--batch N] [--w W]

Reads FILE line by line, parses each line with json.loads and inserts the dicts with
insert_many(ordered=False), N at a time (default 1000), one batch in flight. W is the write
concern (default `majority`, as the mongo factory's default; a number for w: N). Documents are
stored as JSON gives them: strings stay strings (no Decimal128, no dates) and `_id` is an
ObjectId made by the driver. Prints one JSON line: {"inserted": ..., "seconds": ...}.
"""

import argparse
import json
import sys
import time

from pymongo import MongoClient
from pymongo.write_concern import WriteConcern


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("uri")
    parser.add_argument("database")
    parser.add_argument("collection")
    parser.add_argument("file")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--w", default="majority")
    args = parser.parse_args()
    w = int(args.w) if args.w.isdigit() else args.w

    start = time.perf_counter()
    client = MongoClient(args.uri)
    collection = client[args.database].get_collection(
        args.collection, write_concern=WriteConcern(w=w)
    )
    inserted = 0
    batch = []
    with open(args.file, "rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            batch.append(json.loads(line))
            if len(batch) >= args.batch:
                inserted += len(collection.insert_many(batch, ordered=False).inserted_ids)
                batch = []
    if batch:
        inserted += len(collection.insert_many(batch, ordered=False).inserted_ids)
    client.close()
    json.dump({"inserted": inserted, "seconds": round(time.perf_counter() - start, 6)}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
