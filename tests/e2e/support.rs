//! Shared fixtures: a stack per test, and small HTTP helpers.

use mayfly_e2e::{Stack, StackOptions, Tools};

/// A fresh stack with `vars` set on the worker.
pub(crate) fn stack_with(vars: &[(&str, &str)]) -> Stack {
    let options = StackOptions {
        vars: vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..StackOptions::default()
    };
    Stack::start(&Tools::of_workspace(), options).expect("the stack starts")
}

/// `GET url`, whatever the status: (status, body).
pub(crate) fn get(url: &str) -> (u16, String) {
    match ureq::get(url).call() {
        Ok(resp) => (resp.status(), resp.into_string().expect("a text body")),
        Err(ureq::Error::Status(status, resp)) => (status, resp.into_string().expect("a text body")),
        Err(err) => panic!("GET {url}: {err}"),
    }
}
