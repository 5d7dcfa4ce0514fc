//! Reclaim planning (vmmresv_policy(3VMMRESV), "Reclaim planning").

use super::super::boundary::{export, out, read_array, write_array};
use crate::policy::planner::{self, Consumer};
use crate::status::{Error, Status};

/// A consumer memory can be reclaimed from, for vmmresv_plan_reclaim().
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_consumer {
    /// What it holds now.
    pub size_bytes: u64,
    /// What it must keep.
    pub floor_bytes: u64,
    /// Below 0: greedy, has unused memory (more negative = greedier);
    /// above 0: needy. Greedier consumers give first.
    pub score: i32,
    /// Must be 0 (room for later versions).
    pub reserved: u32,
}

static_assertions::assert_eq_size!(vmmresv_consumer, [u64; 3]);

/// How much each of the `n` `consumers` gives to meet `demand_bytes`:
/// greediest score first, each score's consumers drained completely before
/// the next score is asked; within the score that covers the rest, each
/// gives in proportion to size - floor (rounded so the bytes add up
/// exactly); no one below its floor. Writes `gives[i]` (`n` entries) and
/// `*total_bytes` = min(demand, Σ (size - floor)); the demand not met is
/// demand - total. `consumers` and `gives` may be NULL when `n` is 0.
#[no_mangle]
pub extern "C" fn vmmresv_plan_reclaim(
    consumers: *const vmmresv_consumer,
    n: usize,
    demand_bytes: u64,
    gives: *mut u64,
    total_bytes: *mut u64,
) -> Status {
    export(|| {
        let total_bytes = out!(total_bytes)?;
        if n > 0 && gives.is_null() {
            return Err(Error::new(Status::NullArgument));
        }
        let cs = read_array!(consumers, n)?
            .iter()
            .map(|c| {
                if c.reserved != 0 {
                    return Err(Error::new(Status::InvalidArgument));
                }
                Ok(Consumer {
                    size_bytes: c.size_bytes,
                    floor_bytes: c.floor_bytes,
                    score: c.score,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let p = planner::plan(&cs, demand_bytes);
        write_array!(gives, &p.gives)?;
        total_bytes.set(p.total_bytes);
        Ok(())
    })
}
