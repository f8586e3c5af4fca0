//! Tests beside a real Medusa 2.21.2 (`tools/with-medusa`): its answers compared with ours, our tokens at its
//! update route, its own reset route closed, the storefront's JS SDK through `make run`.

mod support;

mod backend_proxy;
mod medusa_differential;
mod medusa_tokens;
mod update_differential;
