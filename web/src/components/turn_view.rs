//! One turn, live: its output as it streams, the timeline of its phases, its outcome, each
//! resource's reap state with a countdown to its deadline, and for a turn of a session its
//! parent, its database's summary and its checkpoint. The event stream is the client
//! library's, which reopens it after the last event taken whenever it drops, so the view resumes
//! without gaps or duplicates.

use std::time::Duration;

use futures::StreamExt;
use leptos::html::Pre;
use leptos::prelude::*;
use leptos::task::spawn_local;
use mayfly_core::turn::progress::Phase;
use mayfly_core::{Event, EventBody, ReapState, TurnDetail, TurnProgress, TurnState};
use wasm_bindgen::JsCast;

use crate::ansi::AnsiDecoder;
use crate::api;
use crate::components::checkpoint::{CheckpointPanel, Lineage};
use crate::components::database_summary::DatabaseSummaryView;
use crate::components::resources::Resources;
use crate::components::time::{format_ms, now_unix_ms, sleep};
use crate::timeline::bar;

/// More output than this stays out of the page (the event stream still has all of it): a
/// browser tab keeps up with a megabyte of spans, not with a hundred.
const MAX_RENDERED_BYTES: usize = 1 << 20;

/// The event stream's connection, as the view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    Connecting,
    Live,
    Reconnecting(u32),
    /// The turn is over and every event is in.
    Done,
    Failed(String),
}

#[component]
pub(crate) fn TurnView(
    turn_id: String,
    key: String,
    /// Every event, once, in order, as it is taken (the embed view forwards them).
    #[prop(optional)]
    on_event: Option<Callback<Event>>,
    /// What "Fork from this turn" does; without it, it links to the playground.
    #[prop(optional)]
    on_fork: Option<Callback<String>>,
) -> impl IntoView {
    let log = RwSignal::new(TurnProgress::default());
    let link = RwSignal::new(Link::Connecting);
    let detail = RwSignal::new(None::<TurnDetail>);
    let hidden_bytes = RwSignal::new(0usize);
    let follow_output = RwSignal::new(true);
    let output = NodeRef::<Pre>::new();
    let now = RwSignal::new(now_unix_ms());

    let (stream_task, stream_abort) = futures::future::abortable(follow_events(
        turn_id.clone(),
        key.clone(),
        Signals { log, link, hidden_bytes, follow_output, output },
        on_event,
    ));
    spawn_local(async move {
        let _ = stream_task.await;
    });
    let (poll_task, poll_abort) = futures::future::abortable(poll_detail(turn_id.clone(), key.clone(), detail, now));
    spawn_local(async move {
        let _ = poll_task.await;
    });
    on_cleanup(move || {
        stream_abort.abort();
        poll_abort.abort();
    });

    let on_scroll = move |_| {
        if let Some(pre) = output.get_untracked() {
            let at_bottom = pre.scroll_top() + pre.client_height() >= pre.scroll_height() - 8;
            if follow_output.get_untracked() != at_bottom {
                follow_output.set(at_bottom);
            }
        }
    };
    // A wheel turned up or a key that moves up is the reader's intent, known before the next
    // chunk of output could scroll the view back down under them.
    let on_wheel = move |ev: web_sys::WheelEvent| {
        if ev.delta_y() < 0.0 {
            follow_output.set(false);
        }
    };
    let on_key = move |ev: web_sys::KeyboardEvent| {
        if matches!(ev.key().as_str(), "ArrowUp" | "PageUp" | "Home") {
            follow_output.set(false);
        }
    };
    let jump_to_end = move |_| {
        if let Some(pre) = output.get_untracked() {
            pre.set_scroll_top(pre.scroll_height());
        }
        follow_output.set(true);
    };

    let (heading, id_attr) = (turn_id.clone(), turn_id.clone());
    view! {
        <section class="turn" data-testid="turn-view" data-turn-id=id_attr>
            <div class="turn-head">
                <h2>"Turn " <code>{heading}</code></h2>
                <LinkBadge link=link/>
                <OutcomeBadge log=log/>
            </div>
            <Lineage log=log detail=detail/>
            <div class="output-wrap">
                <pre class="output" data-testid="output" node_ref=output on:scroll=on_scroll on:wheel=on_wheel
                    on:keydown=on_key tabindex="0"
                    aria-label="output" aria-live="off"></pre>
                <Show when=move || !follow_output.get()>
                    <button class="jump" on:click=jump_to_end>"↓ follow output"</button>
                </Show>
            </div>
            <Show when=move || { hidden_bytes.get() > 0 }>
                <p class="notice" data-testid="output-capped">
                    {move || format!(
                        "{} more bytes of output are not shown here: the page keeps the first {} MiB.",
                        hidden_bytes.get(), MAX_RENDERED_BYTES >> 20
                    )}
                </p>
            </Show>
            {move || log.with(|l| l.output_kept_bytes).map(|kept| view! {
                <p class="notice" data-testid="output-truncated">
                    {format!(
                        "The turn kept its first {kept} bytes of output, its limit; what it printed after that \
                         was dropped while the code ran on."
                    )}
                </p>
            })}
            <Timeline log=log detail=detail/>
            <DatabaseSummaryView log=log/>
            <CheckpointPanel turn_id=turn_id.clone() key=key.clone() detail=detail log=log now=now on_fork=on_fork/>
            <Resources turn_id=turn_id key=key detail=detail log=log now=now/>
        </section>
    }
}

#[component]
fn LinkBadge(link: RwSignal<Link>) -> impl IntoView {
    move || {
        let (state, text) = match link.get() {
            Link::Connecting => ("connecting", "connecting…".to_owned()),
            Link::Live => ("live", "live".to_owned()),
            Link::Reconnecting(n) => ("reconnecting", format!("reconnecting… (attempt {n})")),
            Link::Done => ("done", "complete".to_owned()),
            Link::Failed(why) => ("failed", why),
        };
        view! { <span class=format!("badge link-{state}") data-testid="link" data-state=state>{text}</span> }
    }
}

#[component]
fn OutcomeBadge(log: RwSignal<TurnProgress>) -> impl IntoView {
    move || {
        log.with(|l| {
            let exit = l.exit_code.map(|c| format!(" · exit {c}")).unwrap_or_default();
            let (state, text) = match l.outcome {
                None if l.run_phase.start.is_some() => ("running".to_owned(), "running".to_owned()),
                None => ("provisioning".to_owned(), "provisioning".to_owned()),
                Some(outcome) => {
                    let name = outcome.as_str();
                    (name.to_owned(), name.replace('_', " "))
                }
            };
            let error = l.error.clone();
            view! {
                <span class=format!("badge outcome-{state}") data-testid="outcome" data-outcome=state>
                    {text}
                </span>
                <span class="exit" data-testid="exit-code">{exit}</span>
                {error.map(|e| view! { <p class="error turn-error" data-testid="turn-error">{e}</p> })}
            }
        })
    }
}

/// The phases as bars on one time axis, with their milliseconds. The seed's only for a turn that
/// has one, and the copy only for a fork that copied its checkpoint (where the provider cannot
/// fork): for every other turn each would be a row that never starts.
#[component]
fn Timeline(log: RwSignal<TurnProgress>, detail: RwSignal<Option<TurnDetail>>) -> impl IntoView {
    let seeded = move || {
        log.with(|l| l.seed_phase.start.is_some())
            || detail.with(|d| d.as_ref().is_some_and(|d| d.spec.seed_sql_bytes.is_some()))
    };
    let rows = move || {
        let seeded = seeded();
        log.with(|l| {
            let copied = l.copy_phase.start.is_some() || l.timings.copy_ms.is_some();
            Phase::ALL
                .iter()
                .filter(|&&phase| (phase != Phase::Seed || seeded) && (phase != Phase::Copy || copied))
                .map(|&phase| {
                    let span = l.span(phase);
                    // A phase the turn ended in the middle of (a seed that failed, say) stopped
                    // there: it is not running any more.
                    let cut_short = span.start.is_some() && span.end.is_none() && l.is_finished();
                    let bar = bar(l, phase).map(|(left, width)| {
                        let running = span.end.is_none() && !cut_short;
                        view! {
                            <div class="bar" class:running=running class:cut-short=cut_short
                                style:left=format!("{left:.2}%") style:width=format!("{width:.2}%")></div>
                        }
                    });
                    let ms = match (span.start, span.ms()) {
                        (_, Some(ms)) => format_ms(ms),
                        (Some(_), None) if cut_short => "stopped".to_owned(),
                        (Some(_), None) => "…".to_owned(),
                        (None, None) => "—".to_owned(),
                    };
                    view! {
                        <div class="phase" data-testid=format!("phase-{}", phase.label())
                            data-done=span.ms().is_some().to_string()>
                            <span class="phase-name">{phase.label()}</span>
                            <div class="track">{bar}</div>
                            <span class="phase-ms">{ms}</span>
                        </div>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <div class="timeline" data-testid="timeline" role="group" aria-label="timeline">
            {rows}
            <div class="axis">"0 ms" <span>{move || format_ms(log.with(|l| l.now_ms))}</span></div>
        </div>
    }
}

/// The signals the stream task writes.
#[derive(Clone, Copy)]
struct Signals {
    log: RwSignal<TurnProgress>,
    link: RwSignal<Link>,
    hidden_bytes: RwSignal<usize>,
    follow_output: RwSignal<bool>,
    output: NodeRef<Pre>,
}

/// Reads the event stream to its end; the client reopens it whenever it drops, and says so.
async fn follow_events(turn_id: String, key: String, signals: Signals, on_event: Option<Callback<Event>>) {
    // The `<pre>` may be one a previous turn's view wrote into (a view replaced by another is
    // patched in place, and the output is not the framework's to clear).
    if let Some(pre) = signals.output.get_untracked() {
        pre.set_text_content(None);
    }
    let mut printer = Printer::default();
    let mut updates = api::follow(&key, &turn_id);
    while let Some(update) = updates.next().await {
        match update {
            Ok(mayfly_client::Update::Connected { .. }) => signals.link.set(Link::Live),
            Ok(mayfly_client::Update::Reconnecting { attempt, .. }) => signals.link.set(Link::Reconnecting(attempt)),
            Ok(mayfly_client::Update::Event(event)) => {
                // The client hands on each event once and in order: the fold takes every one.
                signals.log.update(|l| {
                    l.apply(&event);
                });
                printer.print(&event, &signals);
                if let Some(on_event) = on_event {
                    on_event.run(event);
                }
            }
            Err(err) => {
                signals.link.set(Link::Failed(err.message));
                return;
            }
        }
    }
    signals.link.set(Link::Done);
}

/// Writes output events into the `<pre>`, appending spans instead of re-rendering the log.
#[derive(Default)]
struct Printer {
    stdout: AnsiDecoder,
    stderr: AnsiDecoder,
    rendered: usize,
}

impl Printer {
    fn print(&mut self, event: &Event, signals: &Signals) {
        let (data, decoder, stream) = match &event.body {
            EventBody::Stdout { data } => (data, &mut self.stdout, "stdout"),
            EventBody::Stderr { data } => (data, &mut self.stderr, "stderr"),
            _ => return,
        };
        let Some(pre) = signals.output.get_untracked() else { return };
        if self.rendered + data.len() > MAX_RENDERED_BYTES {
            signals.hidden_bytes.update(|n| *n += data.len());
            return;
        }
        self.rendered += data.len();
        let document = leptos::prelude::document();
        for segment in decoder.feed(data) {
            let Ok(span) = document.create_element("span") else { continue };
            let classes = segment.style.classes();
            let _ = span.set_attribute("class", format!("{stream} {classes}").trim_end());
            if let Some(element) = span.dyn_ref::<web_sys::HtmlElement>() {
                for (property, value) in segment.style.declarations() {
                    let _ = element.style().set_property(property, &value);
                }
            }
            span.set_text_content(Some(&segment.text));
            let _ = pre.append_child(&span);
        }
        if signals.follow_output.get_untracked() {
            pre.set_scroll_top(pre.scroll_height());
        }
    }
}

/// Polls the turn's detail (reap states, deadlines) until every resource is final, and ticks
/// the clock the countdowns read. A checkpoint kept after the turn is asked about less often: it
/// changes only when its time runs out or someone extends or releases it, for up to a day.
async fn poll_detail(turn_id: String, key: String, detail: RwSignal<Option<TurnDetail>>, now: RwSignal<u64>) {
    const TICK: Duration = Duration::from_millis(500);
    const CHECKPOINT_TICKS: u32 = 6;
    let mut ticks_since_asked = u32::MAX;
    loop {
        now.set(now_unix_ms());
        let only_a_checkpoint = detail.with_untracked(|d| d.as_ref().is_some_and(only_a_checkpoint_left));
        if !only_a_checkpoint || ticks_since_asked >= CHECKPOINT_TICKS {
            ticks_since_asked = 0;
            if let Ok(turn) = api::turn(&key, &turn_id).await {
                let settled = turn.is_settled();
                detail.set(Some(turn));
                if settled {
                    return;
                }
            }
        }
        ticks_since_asked = ticks_since_asked.saturating_add(1);
        sleep(TICK).await;
    }
}

/// Whether the turn is over and all that is left of it is its database, kept as a checkpoint.
fn only_a_checkpoint_left(turn: &TurnDetail) -> bool {
    turn.state == TurnState::Finished
        && turn
            .resources
            .iter()
            .all(|r| matches!(r.reap, ReapState::Reaped | ReapState::Kept | ReapState::Checkpointed))
}
