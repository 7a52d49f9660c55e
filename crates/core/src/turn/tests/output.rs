//! A turn's output: characters whole across chunks, what is already waiting batched into one
//! event per stream up to a size, and the cap with its one truncation event.

use bytes::Bytes;

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn a_character_split_across_chunks_comes_out_whole() {
    let world = World::new();
    world.process(vec![
        started(),
        stdout(b"h\xc3"),
        stderr(b"\xe2\x82"),
        stdout(b"\xa9llo \xff!"),
        stderr(b"\xac"),
        stdout(b"\xf0\x9f"),
        exited(0),
    ]);
    world.run(spec("print(1)"), TurnOptions::default());
    let output: Vec<String> =
        world.events().lines().filter(|l| l.contains("stdout") || l.contains("stderr")).map(str::to_owned).collect();
    expect![[r##"
        [
            "#8    315 ms stdout {\"data\":\"h\"}",
            "#9    315 ms stdout {\"data\":\"éllo �!\"}",
            "#10   315 ms stderr {\"data\":\"€\"}",
            "#11   315 ms stdout {\"data\":\"�\"}",
        ]
    "##]]
    .assert_debug_eq(&output);
}

#[test]
fn output_already_waiting_goes_out_as_one_event_per_stream() {
    let world = World::new();
    world.process(vec![
        started(),
        stdout(b"a"),
        stdout(b"b"),
        stderr(b"x"),
        stderr(b"y"),
        stdout(b"c"),
        Step::Wait(10),
        stdout(b"d"),
        exited(0),
    ]);
    world.run(spec("print(1)"), TurnOptions::default());
    let output: Vec<String> =
        world.events().lines().filter(|l| l.contains("stdout") || l.contains("stderr")).map(str::to_owned).collect();
    expect![[r##"
        [
            "#8    315 ms stdout {\"data\":\"ab\"}",
            "#9    315 ms stderr {\"data\":\"xy\"}",
            "#10   315 ms stdout {\"data\":\"c\"}",
            "#11   325 ms stdout {\"data\":\"d\"}",
        ]
    "##]]
    .assert_debug_eq(&output);
}

#[test]
fn a_batch_of_output_stops_at_its_size_limit_and_loses_nothing() {
    let world = World::new();
    let chunk = Bytes::from(vec![b'x'; 1024]);
    let chunks = 2 * OUTPUT_BATCH_BYTES / 1024 + 3;
    let mut steps = vec![started()];
    steps.extend((0..chunks).map(|_| Step::Emit(ProcessEvent::Stdout(chunk.clone()))));
    steps.push(exited(0));
    world.process(steps);
    world.run(spec("print(1)"), TurnOptions::default());
    let sizes: Vec<usize> = world
        .sink
        .events
        .borrow()
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Stdout { data } => Some(data.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [OUTPUT_BATCH_BYTES, OUTPUT_BATCH_BYTES, 3 * 1024]);
}

#[test]
fn output_past_the_cap_is_dropped_after_one_truncation_event() {
    let world = World::new();
    let chunk = Bytes::from("é".repeat(600)); // 1,200 bytes, two per character
    let mut steps = vec![started()];
    steps.extend((0..10).flat_map(|_| [Step::Emit(ProcessEvent::Stdout(chunk.clone())), Step::Wait(1)]));
    steps.push(stderr(b"still here\n"));
    steps.push(exited(0));
    world.process(steps);
    let options = TurnOptions { max_output_bytes: 3_001, ..TurnOptions::default() };
    let report = world.run(spec("print(1)"), options);
    assert_eq!(report.outcome, Outcome::Succeeded, "the process kept running to its own exit");
    let events = world.sink.events.borrow();
    let kept: usize = events
        .iter()
        .map(|e| match &e.body {
            EventBody::Stdout { data } | EventBody::Stderr { data } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(kept, 3_000, "up to the cap, cut between characters");
    let truncated: Vec<&EventBody> =
        events.iter().map(|e| &e.body).filter(|b| matches!(b, EventBody::OutputTruncated { .. })).collect();
    assert_eq!(truncated, [&EventBody::OutputTruncated { kept_bytes: 3_000 }]);
    assert!(events.iter().any(|e| matches!(e.body, EventBody::ProcessExited { exit_code: 0, .. })));
}
