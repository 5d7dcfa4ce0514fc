//! The reservoir's resize logic (`reservoir::resize_with`, `query_with`)
//! against a scripted kernel (the `Kernel` seam) whose every answer comes
//! from the fuzz input: query counters or an errno, SET_TARGET successes,
//! interruptions with any size reached, and failures with any errno
//! (among them the kernel's own: EINTR, ENOMEM, ENOSPC, EALREADY, EINVAL,
//! EPERM, EFAULT, EOVERFLOW), a kernel that even writes a result on a
//! failure, plus arbitrary plans (set target / add / remove as
//! `Reservoir` builds them, nothing to do, a failing plan) and a progress
//! callback that cancels after k interruptions.
//!
//! Invariants:
//! - no panic, and termination: the script is finite, an exhausted script
//!   answers success, and more than MAX_CALLS kernel calls is a failure;
//! - a request that reaches the kernel is the plan's target and chunk,
//!   page-aligned, not SIZE_MAX, with vrt_result_sz zeroed;
//! - `Ok(v)` only with v = the size the kernel reported on its successful
//!   SET_TARGET (or, with nothing to do, the size the query reported), and
//!   every SET_TARGET before it was interrupted;
//! - the progress callback is called once per EINTR, with the size that
//!   EINTR reported and the target; a cancel returns `Interrupted` (errno
//!   EINTR) with exactly that size, and the kernel is not called again;
//! - any other error carries `reached` = the size of the last query (None
//!   if that query failed), and an errno-derived status matches
//!   `status_of_errno`;
//! - after success or cancel, no further kernel call.
//!
//! Input: `PLAN PROGRESS FLAGS ENTRY*` (see `decode`).

#![no_main]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use vmmresv::errno::status_of_errno;
use vmmresv::reservoir::{query_with, resize_with, Kernel, ReservoirQuery};
use vmmresv::sys::{vmm_resv_query, vmm_resv_target};
use vmmresv::{Error, Progress, Status};
use vmmresv_fuzz::Input;

const MAX_CALLS: usize = 100_000;

const ERRNOS: [i32; 9] = [
    0,
    libc::EINTR,
    libc::ENOMEM,
    libc::ENOSPC,
    libc::EALREADY,
    libc::EINVAL,
    libc::EPERM,
    libc::EFAULT,
    libc::EOVERFLOW,
];

fn errno(inp: &mut Input<'_>) -> i32 {
    let sel = inp.u8();
    match usize::from(sel) {
        i if i < ERRNOS.len() => ERRNOS[i],
        // Mostly the kernel's own meanings; sometimes anything at all.
        i if i < 200 => ERRNOS[i % ERRNOS.len()],
        _ => inp.u32() as i32,
    }
}

#[derive(Clone, Copy, Debug)]
enum QueryAnswer {
    Ok(vmm_resv_query),
    Err(i32),
}

#[derive(Clone, Copy, Debug)]
struct SetAnswer {
    errno: i32,
    result: u64,
    /// Write `result` back even on an error the kernel would not copy out.
    scribble: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Event {
    /// A query that answered (EINTR answers are `QueryEintr`).
    Query(Result<u64, i32>),
    QueryEintr,
    Set {
        req: vmm_resv_target,
        errno: i32,
        result: u64,
    },
    Progress {
        reached: u64,
        target: u64,
        cancel: bool,
    },
}

struct Script {
    queries: RefCell<VecDeque<QueryAnswer>>,
    sets: RefCell<VecDeque<SetAnswer>>,
    /// Free + alloc as the kernel last said (what an exhausted script
    /// reports).
    size: Cell<u64>,
    log: RefCell<Vec<Event>>,
    calls: Cell<usize>,
}

impl Script {
    fn count(&self) {
        let n = self.calls.get() + 1;
        assert!(n <= MAX_CALLS, "no termination: {n} kernel calls");
        self.calls.set(n);
    }
}

impl Kernel for Script {
    fn resv_query(&self) -> Result<vmm_resv_query, i32> {
        self.count();
        let a = self
            .queries
            .borrow_mut()
            .pop_front()
            .unwrap_or(QueryAnswer::Ok(vmm_resv_query {
                vrq_free_sz: self.size.get(),
                vrq_alloc_sz: 0,
                vrq_alloc_transient_sz: 0,
                vrq_limit: 1 << 40,
            }));
        let ev = match a {
            QueryAnswer::Ok(q) => Event::Query(Ok(ReservoirQuery::from(q).size())),
            QueryAnswer::Err(libc::EINTR) => Event::QueryEintr,
            QueryAnswer::Err(e) => Event::Query(Err(e)),
        };
        self.log.borrow_mut().push(ev);
        match a {
            QueryAnswer::Ok(q) => Ok(q),
            QueryAnswer::Err(e) => Err(e),
        }
    }

    fn resv_set_target(&self, req: &mut vmm_resv_target) -> Result<(), i32> {
        self.count();
        let a = self.sets.borrow_mut().pop_front().unwrap_or(SetAnswer {
            errno: 0,
            result: req.vrt_target_sz,
            scribble: false,
        });
        self.log.borrow_mut().push(Event::Set {
            req: *req,
            errno: a.errno,
            result: a.result,
        });
        if a.errno == 0 || a.errno == libc::EINTR || a.scribble {
            req.vrt_result_sz = a.result;
        }
        if a.errno == 0 || a.errno == libc::EINTR {
            self.size.set(a.result);
        }
        if a.scribble {
            // A hostile kernel may rewrite the whole request.
            req.vrt_target_sz = a.result.rotate_left(7);
            req.vrt_chunk_sz = a.result.rotate_left(13);
        }
        match a.errno {
            0 => Ok(()),
            e => Err(e),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Plan {
    SetTarget { target: u64, chunk: u64 },
    Add { bytes: u64, chunk: u64 },
    Remove { bytes: u64, chunk: u64 },
    Nothing,
    Fail(Status),
}

impl Plan {
    /// As `Reservoir::set_target` / `add` / `remove` build their plans.
    fn apply(self, q: &ReservoirQuery) -> Result<Option<(u64, u64)>, Error> {
        match self {
            Plan::SetTarget { target, chunk } => Ok(Some((target, chunk))),
            Plan::Add { bytes, chunk } => {
                let target = q
                    .size()
                    .checked_add(bytes)
                    .ok_or(Error::new(Status::Overflow))?;
                Ok(Some((target, chunk.min(bytes))))
            }
            Plan::Remove { bytes, chunk } => {
                let cur = q.size();
                if cur == 0 {
                    return Ok(None);
                }
                Ok(Some((cur - bytes.min(cur), chunk.min(bytes))))
            }
            Plan::Nothing => Ok(None),
            Plan::Fail(s) => Err(Error::new(s)),
        }
    }
}

/// The query the plan saw and what it answered.
type Planned = (ReservoirQuery, Result<Option<(u64, u64)>, Error>);

struct Case {
    plan: Plan,
    /// None: no callback; Some(k): cancel at the k-th call (0 = never).
    cancel_at: Option<u32>,
    query_first: bool,
    script: Script,
}

fn decode(data: &[u8]) -> Case {
    let mut inp = Input::new(data);
    let plan = match inp.u8() % 5 {
        0 => Plan::SetTarget {
            target: inp.size(),
            chunk: inp.size(),
        },
        1 => Plan::Add {
            bytes: inp.size(),
            chunk: inp.size(),
        },
        2 => Plan::Remove {
            bytes: inp.size(),
            chunk: inp.size(),
        },
        3 => Plan::Nothing,
        _ => {
            let all = Status::all();
            Plan::Fail(all[1 + usize::from(inp.u8()) % (all.len() - 1)])
        }
    };
    let cancel_at = match inp.u8() {
        0 => None,
        255 => Some(0),
        k => Some(u32::from(k)),
    };
    let query_first = inp.u8() & 1 == 1;
    let mut queries = VecDeque::new();
    let mut sets = VecDeque::new();
    while !inp.is_empty() {
        let tag = inp.u8();
        if tag & 1 == 0 {
            let e = errno(&mut inp);
            if e == 0 {
                queries.push_back(QueryAnswer::Ok(vmm_resv_query {
                    vrq_free_sz: inp.size(),
                    vrq_alloc_sz: inp.size(),
                    vrq_alloc_transient_sz: inp.size(),
                    vrq_limit: inp.size(),
                }));
            } else {
                queries.push_back(QueryAnswer::Err(e));
            }
        } else {
            let errno = errno(&mut inp);
            sets.push_back(SetAnswer {
                errno,
                result: inp.size(),
                scribble: tag & 2 == 2,
            });
        }
    }
    Case {
        plan,
        cancel_at,
        query_first,
        script: Script {
            queries: RefCell::new(queries),
            sets: RefCell::new(sets),
            size: Cell::new(0),
            log: RefCell::new(Vec::new()),
            calls: Cell::new(0),
        },
    }
}

fn os_error(e: i32) -> Error {
    Error::with_errno(status_of_errno(e), e)
}

fuzz_target!(|data: &[u8]| {
    let case = decode(data);
    let k = &case.script;

    if case.query_first {
        let got = query_with(k);
        let log = k.log.borrow();
        assert!(log[..log.len() - 1].iter().all(|e| *e == Event::QueryEintr));
        match (log.last(), got) {
            (Some(Event::Query(Ok(size))), Ok(q)) => assert_eq!(q.size(), *size),
            (Some(Event::Query(Err(e))), Err(err)) => assert_eq!(err, os_error(*e)),
            (ev, got) => panic!("query_with: kernel said {ev:?}, got {got:?}"),
        }
        drop(log);
        k.log.borrow_mut().clear();
    }

    let planned: Cell<Option<Planned>> = Cell::new(None);
    let plan = case.plan;
    let mut progress_calls = 0u32;
    let mut cb = |reached: u64, target: u64| {
        progress_calls += 1;
        let cancel = case.cancel_at == Some(progress_calls);
        k.log.borrow_mut().push(Event::Progress {
            reached,
            target,
            cancel,
        });
        if cancel {
            Progress::Cancel
        } else {
            Progress::Continue
        }
    };
    let progress: Option<&mut dyn FnMut(u64, u64) -> Progress> = match case.cancel_at {
        Some(_) => Some(&mut cb),
        None => None,
    };
    let result = resize_with(
        k,
        |q| {
            let r = plan.apply(q);
            planned.set(Some((*q, r)));
            r
        },
        progress,
    );

    let log = k.log.borrow();
    // The first query: EINTRs retried, then an answer.
    let first = log
        .iter()
        .position(|e| *e != Event::QueryEintr)
        .expect("resize_with never got a query answer");
    let q0 = match log[first] {
        Event::Query(Ok(size)) => size,
        Event::Query(Err(e)) => {
            assert_eq!(first + 1, log.len(), "kernel called after a failed query");
            let err = result.expect_err("Ok after a failed first query");
            assert_eq!(err.error, os_error(e));
            assert_eq!(err.reached, None);
            assert!(planned.take().is_none(), "planned without a query");
            return;
        }
        ref ev => panic!("first kernel call was {ev:?}"),
    };
    let (q, plan_result) = planned.take().expect("plan not called after a query");
    assert_eq!(q.size(), q0, "plan saw another query");
    let after_plan = &log[first + 1..];
    let (target, chunk) = match plan_result {
        Ok(Some(tc)) => tc,
        Ok(None) => {
            assert!(after_plan.is_empty(), "kernel called with nothing to do");
            assert_eq!(result, Ok(q0), "nothing to do must report the size");
            return;
        }
        Err(e) => {
            assert!(after_plan.is_empty(), "kernel called after the plan failed");
            let err = result.expect_err("Ok after the plan failed");
            assert_eq!((err.error, err.reached), (e, Some(q0)));
            return;
        }
    };
    let bad = target % 4096 != 0 || chunk % 4096 != 0 || target == u64::MAX;
    if bad {
        assert!(after_plan.is_empty(), "a bad request reached the kernel");
        let err = result.expect_err("Ok for an unaligned request");
        assert_eq!(err.error.status(), Status::Unaligned);
        assert_eq!(err.reached, Some(q0));
        return;
    }

    // Walk the SET_TARGET calls.
    let mut i = 0;
    loop {
        let Some(ev) = after_plan.get(i) else {
            panic!("resize_with returned {result:?} without a final answer: {log:?}");
        };
        let Event::Set {
            req,
            errno,
            result: sz,
        } = *ev
        else {
            panic!("expected SET_TARGET, got {ev:?}");
        };
        assert_eq!(
            req,
            vmm_resv_target {
                vrt_target_sz: target,
                vrt_chunk_sz: chunk,
                vrt_result_sz: 0
            },
            "request differs from the plan"
        );
        i += 1;
        match errno {
            0 => {
                assert_eq!(i, after_plan.len(), "kernel called after success");
                assert_eq!(result, Ok(sz), "success must report the kernel's size");
                return;
            }
            libc::EINTR => {
                if case.cancel_at.is_none() {
                    continue;
                }
                let Some(&Event::Progress {
                    reached,
                    target: t,
                    cancel,
                }) = after_plan.get(i)
                else {
                    panic!("no progress call after EINTR: {log:?}");
                };
                assert_eq!((reached, t), (sz, target), "progress got other figures");
                i += 1;
                if cancel {
                    assert_eq!(i, after_plan.len(), "kernel called after cancel");
                    let err = result.expect_err("Ok after cancel");
                    assert_eq!(
                        err.error,
                        Error::with_errno(Status::Interrupted, libc::EINTR)
                    );
                    assert_eq!(err.reached, Some(sz), "cancel must report the EINTR size");
                    return;
                }
            }
            e => {
                // The size is asked for afresh (EINTRs retried).
                while after_plan.get(i) == Some(&Event::QueryEintr) {
                    i += 1;
                }
                let last_query = match after_plan.get(i) {
                    Some(Event::Query(r)) => r.ok(),
                    ev => panic!("no query after a failed SET_TARGET: {ev:?}"),
                };
                assert_eq!(i + 1, after_plan.len(), "kernel called after the failure");
                let err = result.expect_err("Ok after a failed SET_TARGET");
                assert_eq!(err.error, os_error(e));
                assert_eq!(
                    err.reached, last_query,
                    "reached is not the last query's size"
                );
                return;
            }
        }
    }
});
