//! Tests beside a real Medusa 2.21.2 (`tools/with-medusa`): its answers compared with ours, our tokens at its
//! update route, its own reset route closed, the storefront's JS SDK through `make run`.

mod support;

mod backend_proxy;
mod medusa_differential;
mod medusa_tokens;
// The merchant's middleware that closes Medusa's own reset route, in a real Medusa and behind make run.
mod medusas_route_closed;
mod update_differential;
