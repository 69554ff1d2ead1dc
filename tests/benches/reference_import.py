#!/usr/bin/env python3
"""The plain script mdm-mail's import is measured against (cargo bench --bench import).

It does the least an import can: csv.reader over the file, one query for a dict of
lower(email) -> user id, then one executemany of an upsert into accounts inside one
transaction (WAL, synchronous=NORMAL). Passwords are stored as given: no validation, no
encryption, no per-line report.

    reference_import.py users DB USERS_CSV      create DB with its users (not timed)
    reference_import.py import DB ACCOUNTS_CSV  the import being timed
"""

import csv
import sqlite3
import sys


def connect(path):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def load_users(path, users_csv):
    db = connect(path)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, display_name TEXT)")
    db.execute("CREATE UNIQUE INDEX users_email ON users (lower(email))")
    db.execute(
        "CREATE TABLE accounts (user_id INTEGER NOT NULL, address TEXT NOT NULL,"
        " display_name TEXT, incoming_username TEXT, incoming_password TEXT,"
        " outgoing_username TEXT, outgoing_password TEXT, PRIMARY KEY (user_id, address))"
    )
    with open(users_csv, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        next(rows)
        db.execute("BEGIN")
        db.executemany("INSERT INTO users (email, display_name) VALUES (?, ?)", rows)
        db.execute("COMMIT")


def import_accounts(path, accounts_csv):
    db = connect(path)
    users = dict(db.execute("SELECT lower(email), id FROM users"))
    discarded = 0

    def rows(reader):
        nonlocal discarded
        for user_email, name, address, in_user, in_pw, out_user, out_pw in reader:
            user_id = users.get(user_email.strip().lower())
            if user_id is None:
                discarded += 1
                continue
            yield (user_id, address, name, in_user, in_pw, out_user, out_pw)

    with open(accounts_csv, newline="", encoding="utf-8") as f:
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, address)"
            " DO UPDATE SET display_name = excluded.display_name,"
            " incoming_username = excluded.incoming_username,"
            " incoming_password = excluded.incoming_password,"
            " outgoing_username = excluded.outgoing_username,"
            " outgoing_password = excluded.outgoing_password",
            rows(csv.reader(f)),
        )
        db.execute("COMMIT")
    print(f"discarded {discarded}")


if __name__ == "__main__":
    {"users": load_users, "import": import_accounts}[sys.argv[1]](sys.argv[2], sys.argv[3])
