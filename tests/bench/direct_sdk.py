# The seed's flow as a user writes it without mayfly, with the official `e2b` SDK and httpx, against
# the same sandboxd and scratchdb as mayfly's turns: sandbox and database at once, the code
# written, `python3 main.py` run with the database's URL, then both deleted. `cargo xtask bench`
# runs it (tests/bench/direct.rs) and compares mayfly's turns with it.
#
# The SDK reads its endpoints from E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY and E2B_DOMAIN;
# scratchdb's come from SCRATCHDB_URL and SCRATCHDB_TOKEN. One process runs every turn, as an
# agent's loop would: each line read from stdin runs one turn, which answers with one line, the
# milliseconds from its start to its first stdout byte (or an error).
import asyncio
import json
import os
import sys
import time

import httpx
from e2b import AsyncSandbox

CODE = "print(1)"


async def turn(client, i):
    scratchdb = os.environ["SCRATCHDB_URL"]
    auth = {"Authorization": "Bearer " + os.environ["SCRATCHDB_TOKEN"]}
    started = time.perf_counter()
    first = None

    def on_stdout(_):
        nonlocal first
        if first is None:
            first = time.perf_counter()

    async def database():
        answer = await client.post(f"{scratchdb}/db/new", json={"name": f"direct_{os.getpid()}_{i}"}, headers=auth)
        answer.raise_for_status()
        return answer.json()

    sandbox, db = await asyncio.gather(AsyncSandbox.create(template="mayfly", timeout=120), database())
    try:
        await sandbox.files.write("/home/user/main.py", CODE)
        await sandbox.commands.run(
            "python3 /home/user/main.py", envs={"DATABASE_URL": db["connection_url"]}, on_stdout=on_stdout
        )
    finally:
        await sandbox.kill()
        (await client.delete(f"{scratchdb}/api/v1/resources/{db['token']}", headers=auth)).raise_for_status()
    if first is None:
        raise RuntimeError("no stdout")
    return (first - started) * 1e3


async def main():
    async with httpx.AsyncClient() as client:
        i = 0
        while await asyncio.to_thread(sys.stdin.readline):
            try:
                answer = {"first_stdout_ms": await turn(client, i)}
            except Exception as e:  # the bench reports it as a failed sample
                answer = {"error": f"{type(e).__name__}: {e}"}
            print(json.dumps(answer), flush=True)
            i += 1


asyncio.run(main())
