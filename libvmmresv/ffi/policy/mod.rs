//! Policy (vmmresv_policy(3VMMRESV)): one file per section of the page,
//! in its order (which is also the header's).

mod overhead;

mod states;

mod headroom;

mod profiles;

mod reclaim;

pub use headroom::*;
pub use overhead::*;
pub use profiles::*;
pub use reclaim::*;
pub use states::*;

#[cfg(test)]
mod tests;
