"""Blackboard transitions on a real Redis: each Lua script, fencing, fan-in, counters."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from redis import Redis

from owl import pins, queries
from owl.board import Board
from owl.errors import BoardError
from owl.model import FailureClass
from owl.scripts import LUA_DIR, SCRIPT_NAMES
from owl.server import ensure_server
from owl.template import RetryPolicy, Stage, Template

FAST = RetryPolicy(max_attempts=2, base=0.01, factor=1.0, max_delay=0.01, jitter=0.0)
DAG = Template(name="dag", version="1", stages=(
    Stage("a", retry=FAST),
    Stage("b", after=("a",), retry=FAST),
    Stage("c", after=("a",), retry=FAST),
    Stage("d", after=("b", "c"), retry=FAST),
))
ALL = DAG.stage_names


def _state(board: Board, ds: str, stage: str) -> str:
    return next(i.state for i in queries.dataset(board, ds).items if i.stage == stage)


def _run(board: Board, stage: str, ds: str = "ds1") -> None:
    claims = [c for c in board.claim("w", "dag", [stage], 30, 100) if c.dataset == ds]
    assert len(claims) == 1
    assert board.complete(claims[0], {"by": stage}, "w").ok


def test_every_script_has_a_documented_header() -> None:
    for name in SCRIPT_NAMES:
        head = (LUA_DIR / f"{name}.lua").read_text().split("\n\n")[0]
        assert head.startswith(f"-- {name}.lua:"), name
        for word in ("KEYS[1]", "ARGV[1]", "Returns"):
            assert word in head, f"{name}.lua header lacks {word}"


def test_register_is_idempotent_and_readies_first_stages(board: Board) -> None:
    first = board.register(DAG, "ds1", "/data/ds1_raw.fits")
    again = board.register(DAG, "ds1", "/elsewhere")
    assert (first.new, first.ready) == (True, 1)
    assert (again.new, again.template, again.version) == (False, "dag", "1")
    ds = queries.dataset(board, "ds1")
    assert ds.path == "/data/ds1_raw.fits"
    assert [(i.stage, i.state) for i in ds.items] == [
        ("a", "ready"), ("b", "waiting"), ("c", "waiting"), ("d", "waiting")]
    assert queries.counts(board) == {("dag", "a", "ready"): 1, ("dag", "b", "waiting"): 1,
                                     ("dag", "c", "waiting"): 1, ("dag", "d", "waiting"): 1}


def test_register_rejects_changed_graph_under_same_version(board: Board) -> None:
    board.register(DAG, "ds1")
    other = Template(name="dag", version="1", stages=(Stage("a"), Stage("z", after=("a",))))
    with pytest.raises(BoardError, match="different content"):
        board.register(other, "ds2")


def test_register_rejects_changed_task_or_params_under_same_version(board: Board) -> None:
    board.register(DAG, "ds1")
    stages = list(DAG.stages)
    for changed in (replace(stages[1], task="other:work"), replace(stages[1], params={"k": 2}),
                    replace(stages[1], argv=("echo", "{input}"))):
        edited = replace(DAG, stages=(stages[0], changed, *stages[2:]))
        with pytest.raises(BoardError, match=r"different content .*owl template migrate"):
            board.register(edited, "ds2")
    moved = replace(DAG, source="/elsewhere/dag.yaml",
                    stages=tuple(replace(s, line=s.line + 3) for s in DAG.stages))
    assert board.register(moved, "ds3").new  # the same content from another place
    assert [(p.name, p.version) for p in pins.pinned(board.redis, board.keys)] == [("dag", "1")]


def test_register_rejects_bad_ids(board: Board) -> None:
    with pytest.raises(BoardError, match="dataset id"):
        board.register(DAG, "bad|id")


def test_register_script_directly(board: Board) -> None:
    """The raw script contract: {1, nready}, then {0, template, version} on a repeat."""
    s = board.shard("x1")
    keys = [board.keys.dataset(s, "x1"), board.keys.counts(s), board.keys.events(s),
            board.keys.datasets(s)]
    graph = '{"order":["a"],"stages":{"a":{"a":[],"n":[],"p":0,"m":1,"b":1,"f":2,"x":9,"j":0}}}'
    args = [board.keys.prefix(s), "x1", "raw", "1", "", graph, "d1", "t", 100, "chan"]
    assert board.scripts["register"](keys=keys, args=args, client=board.redis) == [1, 1]
    again = board.scripts["register"](keys=keys, args=args, client=board.redis)
    assert again == [0, "raw", "1", ""]
    args2 = [*args[:2], "raw", "1", "", graph, "other-digest", "t", 100, "chan"]
    keys2 = [board.keys.dataset(s, "x2"), *keys[1:]]
    args2[1] = "x2"
    conflict = board.scripts["register"](keys=keys2, args=args2, client=board.redis)
    assert conflict == [-1, "template-conflict"]


def test_fan_in_waits_for_every_predecessor(board: Board) -> None:
    board.register(DAG, "ds1")
    _run(board, "a")
    assert (_state(board, "ds1", "b"), _state(board, "ds1", "c")) == ("ready", "ready")
    _run(board, "b")
    assert _state(board, "ds1", "d") == "waiting"
    _run(board, "c")
    assert _state(board, "ds1", "d") == "ready"
    claim = board.claim("w", "dag", ["d"], 30, 1)[0]
    assert claim.inputs == {"b": {"by": "b"}, "c": {"by": "c"}}


def test_fifty_concurrent_claimers_one_winner(client: Redis[str], board: Board) -> None:
    board.register(DAG, "only")
    barrier = threading.Barrier(50)
    wins: list[int] = []
    lock = threading.Lock()

    def claimer(i: int) -> None:
        mine = Board(client, board.name)  # redis-py clients are thread-safe
        barrier.wait()
        got = mine.claim(f"agent{i}", "dag", ALL, 30, 1)
        with lock:
            wins.extend([i] * len(got))

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    item = queries.dataset(board, "only").items[0]
    assert (item.state, item.owner, item.attempts) == ("running", f"agent{wins[0]}", 1)


def test_stale_token_is_fenced(board: Board) -> None:
    board.register(DAG, "ds1")
    old = board.claim("zombie", "dag", ["a"], 0.001, 1)[0]
    time.sleep(0.01)
    assert board.reap("reaper") == [("ds1", "a", "retry")]
    time.sleep(0.02)
    new = board.claim("winner", "dag", ["a"], 30, 1)[0]
    assert new.token > old.token and new.attempt == 2
    assert board.renew([old], 30) == {("ds1", "a", old.token): 0}
    late = board.complete(old, {"by": "zombie"}, "zombie")
    assert (late.ok, late.state, late.current_token) == (False, "running", str(new.token))
    assert not board.fail(old, FailureClass.ERROR, "x", "", 0, "zombie").ok
    assert board.complete(new, {"by": "winner"}, "winner").ok
    item = queries.dataset(board, "ds1").items[0]
    assert (item.state, item.token, item.outputs) == ("done", str(new.token), {"by": "winner"})


def test_fail_retries_with_delay_then_dies_with_reason(board: Board) -> None:
    board.register(DAG, "ds1")
    c1 = board.claim("w", "dag", ["a"], 30, 1)[0]
    r1 = board.fail(c1, FailureClass.ERROR, "bad pixel table", "Traceback: one", 0.2, "w")
    assert r1.ok and r1.state == "retry"
    assert board.claim("w", "dag", ["a"], 30, 1) == []  # backoff not over
    time.sleep(0.25)
    c2 = board.claim("w", "dag", ["a"], 30, 1)[0]
    r2 = board.fail(c2, FailureClass.ERROR, "bad pixel table", "Traceback: two", 0, "w")
    assert r2.state == "dead"
    fails = queries.failures(board, "ds1", "a")
    assert [f["traceback"] for f in fails] == ["Traceback: one", "Traceback: two"]
    assert [i.dataset for _, i in queries.select(
        board, queries.Selector(states=("dead",)))] == ["ds1"]


def test_no_retry_class_goes_straight_to_dead(board: Board) -> None:
    t = Template(name="nr", version="1", stages=(
        Stage("a", retry=RetryPolicy(max_attempts=5, no_retry=("timeout",))),))
    board.register(t, "ds1")
    c = board.claim("w", "nr", ["a"], 30, 1)[0]
    assert board.fail(c, FailureClass.TIMEOUT, "too slow", "", 1, "w").state == "dead"


def test_reap_counts_attempt_and_kills_after_max(board: Board) -> None:
    board.register(DAG, "ds1")
    for expected in ("retry", "dead"):
        time.sleep(0.03)
        assert len(board.claim("w", "dag", ["a"], 0.001, 1)) == 1
        time.sleep(0.01)
        assert board.reap("r") == [("ds1", "a", expected)]
    assert queries.failures(board, "ds1", "a")[-1]["class"] == "lease"


def test_a_server_up_for_less_than_the_settle_time_reaps_nothing(board: Board) -> None:
    # After an outage longer than the lease every deadline has passed; a server that has
    # just come back leaves the owners time to renew (here: a settle time it cannot reach).
    board.register(DAG, "ds1")
    assert len(board.claim("w", "dag", ["a"], 0.001, 1)) == 1
    time.sleep(0.01)
    assert board.reap("r", settle=10**9) == []
    running = [i for i in queries.dataset(board, "ds1").items if i.stage == "a"]
    assert running[0].state == "running"
    assert board.reap("r") == [("ds1", "a", "retry")]


def test_hold_pauses_a_running_item_and_release_resumes_it(board: Board) -> None:
    board.register(DAG, "ds1")
    running = board.claim("w", "dag", ["a"], 30, 1)[0]
    held = board.hold([("ds1", "a")], "op")[0]
    assert (held.changed, held.before, held.after) == (True, "running", "held")
    assert board.renew([running], 30) == {("ds1", "a", running.token): 2}  # paused, still ours
    assert board.reap("r") == []  # no lease runs while held
    assert board.claim("w", "dag", ["a"], 30, 1) == []
    assert board.release([("ds1", "a")], "op", lease=30)[0].after == "running"
    assert board.renew([running], 30) == {("ds1", "a", running.token): 1}
    assert board.complete(running, {}, "w").ok


def test_result_reported_while_held_is_fenced(board: Board) -> None:
    board.register(DAG, "ds1")
    running = board.claim("w", "dag", ["a"], 30, 1)[0]
    board.hold([("ds1", "a")], "op")
    assert not board.complete(running, {}, "w").ok
    assert _state(board, "ds1", "a") == "held"


def test_hold_release_retry_skip(board: Board) -> None:
    board.register(DAG, "ds1")
    assert board.hold([("ds1", "a")], "op")[0].before == "ready"
    assert board.claim("w", "dag", ["a"], 30, 1) == []
    assert board.release([("ds1", "a")], "op")[0].after == "ready"
    assert board.hold([("ds1", "b")], "op")[0].before == "waiting"
    _run(board, "a")
    assert _state(board, "ds1", "b") == "held"  # a held successor is not made ready
    assert board.release([("ds1", "b")], "op")[0].after == "ready"
    skipped = board.skip([("ds1", "b")], "op")[0]
    assert (skipped.before, skipped.after) == ("ready", "skipped")
    _run(board, "c")
    assert _state(board, "ds1", "d") == "ready"  # skipped counts as done
    c = board.claim("w", "dag", ["d"], 30, 1)[0]
    board.fail(c, FailureClass.ERROR, "x", "", 0, "w")
    time.sleep(0.02)
    c = board.claim("w", "dag", ["d"], 30, 1)[0]
    assert board.fail(c, FailureClass.ERROR, "x", "", 0, "w").state == "dead"
    assert board.retry([("ds1", "d")], "op")[0].after == "ready"
    again = board.claim("w", "dag", ["d"], 30, 1)[0]
    assert again.attempt == 1  # an operator retry starts the count again
    assert not board.release([("ds1", "d")], "op")[0].changed


def test_memory_escalation_is_kept_for_the_next_claim(board: Board) -> None:
    board.register(DAG, "ds1")
    c = board.claim("w", "dag", ["a"], 30, 1)[0]
    assert c.memory_mb is None
    board.fail(c, FailureClass.MEMORY, "held: memory", "", 0, "w", memory_mb=4096)
    time.sleep(0.02)
    again = board.claim("w", "dag", ["a"], 30, 1)[0]
    assert again.memory_mb == 4096
    final = board.fail(again, FailureClass.MEMORY, "cap", "", 0, "w", final=True)
    assert final.state == "dead"  # first of two attempts, but nothing more can succeed


def test_giveback_does_not_count_an_attempt(board: Board) -> None:
    board.register(DAG, "ds1")
    c = board.claim("w", "dag", ["a"], 30, 1)[0]
    assert board.giveback(c, "w").ok
    again = board.claim("w2", "dag", ["a"], 30, 1)[0]
    assert again.attempt == 1 and again.token > c.token


def test_counters_match_item_states(board: Board) -> None:
    board.register_many(DAG, [(f"ds{i}", "") for i in range(40)])
    for c in board.claim("w", "dag", ["a"], 30, 25):
        board.complete(c, {}, "w")
    for c in board.claim("w", "dag", ["b"], 30, 10):
        board.fail(c, FailureClass.ERROR, "x", "", 5, "w")
    board.hold([("ds39", "a")], "op")
    tally: dict[tuple[str, str, str], int] = {}
    for ds in queries.datasets(board):
        for item in ds.items:
            key = (ds.template, item.stage, item.state)
            tally[key] = tally.get(key, 0) + 1
    assert queries.counts(board) == tally


def test_events_record_every_transition(board: Board) -> None:
    board.register(DAG, "ds1")
    _run(board, "a")
    trail = [(e["st"], e["fr"], e["to"]) for e in queries.events(board, dataset_id="ds1")]
    assert trail[:4] == [("a", "", "ready"), ("b", "", "waiting"), ("c", "", "waiting"),
                         ("d", "", "waiting")]
    assert trail[4:] == [("a", "ready", "running"), ("a", "running", "done"),
                         ("b", "waiting", "ready"), ("c", "waiting", "ready")]


def test_existing_board_keeps_its_shard_count(client: Redis[str], board: Board) -> None:
    assert Board(client, board.name, shards=16).shards == 4


def test_lua_files_are_plain_files() -> None:
    assert all(Path(LUA_DIR / f"{n}.lua").is_file() for n in SCRIPT_NAMES)


def test_scripts_are_reloaded_after_a_script_flush(embedded_home: Path,
                                                   board_name: str) -> None:
    # SCRIPT FLUSH empties the script cache of the whole server: only on the suite's own.
    board = Board(Redis.from_url(ensure_server(embedded_home), decode_responses=True),
                  board_name, shards=4)
    board.register(DAG, "ds1")
    board.redis.script_flush()
    board.register(DAG, "ds2")  # a pipeline meets NOSCRIPT, loads the scripts, repeats
    board.redis.script_flush()
    c = board.claim("w", "dag", ["a"], 30, 1)[0]  # a direct call does the same
    assert board.fail(c, FailureClass.ERROR, "x", "", 0, "w").ok
    board.destroy()


def test_claim_renew_complete_scripts_directly(board: Board) -> None:
    """The raw contracts: claim's 16 values per item, renew's 1/0, complete's {1, n}/fenced."""
    board.register(DAG, "ds1")
    s = board.shard("ds1")
    k = board.keys
    claim_keys = [k.counts(s), k.events(s), k.leases(s), k.delayed(s), k.tokens(s),
                  k.shard_ctl(s), k.pvenv(s)]
    got = board.scripts["sched_claim"](
        keys=claim_keys, client=board.redis,
        args=[k.prefix(s), "w", 30000, 5, 100, "dag", 1, "production", 1, "0", "1", 1,
              1, "a", -1, 1, "b", -1])
    token = got[2]
    assert got == ["ds1", "a", token, 1, "1", "", "{}", "", "production", 1,
                   "", "", "", "", "{}", ""]
    renew = board.scripts["renew"](keys=[k.leases(s)], client=board.redis,
                                   args=[k.prefix(s), 30000, "ds1", "a", token,
                                         "ds1", "a", str(int(token) + 1)])
    assert renew == [1, 0]
    complete_keys = [k.counts(s), k.events(s), k.leases(s), k.dataset(s, "ds1"), k.pvenv(s),
                     k.selcfg(s), k.refuse(s)]
    args = [k.prefix(s), "ds1", "a", token, '{"n": 1}', "w", 100, k.notify, "", "", "", "",
            "", ""]
    assert board.scripts["complete"](keys=complete_keys, args=args, client=board.redis) == [1, 2]
    again = board.scripts["complete"](keys=complete_keys, args=args, client=board.redis)
    assert again == [0, "fenced", "done", str(token)]
    assert board.redis.zcard(k.leases(s)) == 0


def _wakes(board: Board, template: str, action: object) -> list[str]:
    """The wake-up messages of `template`'s channels while `action()` runs."""
    pubsub = board.redis.pubsub(ignore_subscribe_messages=True)
    channels = board.wake_channels(template)
    if board.sharded_pubsub:
        for ch in channels:
            pubsub.ssubscribe(ch)
    else:
        pubsub.subscribe(*channels)
    time.sleep(0.05)
    action()  # type: ignore[operator]
    got = []
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        msg = pubsub.get_sharded_message(timeout=0.05) if board.sharded_pubsub else \
            pubsub.get_message(timeout=0.05)
        if msg is not None:
            got.append(str(msg["data"]))
    pubsub.close()
    return got


def test_a_handoff_that_takes_the_successor_wakes_nobody(board: Board) -> None:
    chain = Template(name="chain", version="1", stages=(
        Stage("a", retry=FAST), Stage("b", after=("a",), retry=FAST)))
    board.register_many(chain, [("x1", ""), ("x2", "")])
    [first, second] = sorted(board.claim("w", "chain", ["a", "b"], 30, 2),
                             key=lambda c: c.dataset)
    handed: list[object] = []

    def complete(claim: object, free: int) -> None:
        _, more = board.complete_many([(claim, {})], "w",  # type: ignore[list-item]
                                      then_claim=("chain", ["a", "b"], 30, free))
        handed.extend(more)

    # the completer claims x1's successor behind its completion: no one else is told
    assert _wakes(board, "chain", lambda: complete(first, 1)) == []
    assert [(c.dataset, c.stage) for c in handed] == [("x1", "b")]
    # no room to take x2's successor: it went into an empty queue, the others are woken
    assert _wakes(board, "chain", lambda: complete(second, 0)) == ["1"]
    assert _state(board, "x2", "b") == "ready"
