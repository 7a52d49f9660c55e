//! Shared fixtures: a worker of its own per test.

use mayfly_e2e::{Tools, WranglerDev, WranglerOptions};

/// A fresh `wrangler dev` with `vars` set on the worker, and no providers behind it.
pub(crate) fn worker_with(vars: &[(&str, &str)]) -> WranglerDev {
    let options = WranglerOptions {
        vars: vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..WranglerOptions::default()
    };
    WranglerDev::start(&Tools::of_workspace(), options).expect("the worker starts")
}
