/**
 * Closes Medusa's own password-reset route,
 * `POST /auth/{actor_type}/{auth_provider}/reset-password`, on the Medusa backend of a shop whose
 * resets go through medusa-reset instead.
 *
 * Why: deploying medusa-reset does not take Medusa's route away, and the backend stays public.
 * That route has no rate limit and no response floor, and on Medusa 2.16+ each call replaces the
 * account's reset-token row, so anyone looping on it keeps invalidating the link medusa-reset has
 * just e-mailed. Here every such request gets 404 in Medusa's error shape (status 404,
 * `application/json; charset=utf-8`):
 *
 *   {"type":"not_found","message":"Password reset is not available on this server"}
 *
 * Every actor type (`customer`, `user`, any custom one), every provider, and every spelling
 * Medusa's router takes to its handler: Express matches paths case-insensitively and ignores a
 * trailing slash, so `/Auth/Customer/EmailPass/Reset-Password` and
 * `/auth/customer/emailpass/reset-password/` reach the handler too. Express matches the path below
 * by the same rules, so every one of those spellings meets this first (paths below it, which have
 * no route, get the same 404). Other methods, login, register,
 * `/auth/{actor_type}/{auth_provider}/update` (where medusa-reset's tokens are spent) and every
 * other route are untouched.
 *
 * Install: save this file as `src/api/middlewares.ts` in the Medusa project, then `medusa build`
 * and deploy as usual.
 *
 * Already have a `src/api/middlewares.ts`? Medusa loads only the file of that name, so save this
 * one beside it as `src/api/close-medusa-reset-password.ts` and spread its routes into yours,
 * keeping everything else of yours (`errorHandler` included) as it is:
 *
 *   import { defineMiddlewares } from "@medusajs/framework/http"
 *   import { closeMedusaResetPassword } from "./close-medusa-reset-password"
 *
 *   export default defineMiddlewares({
 *     routes: [...closeMedusaResetPassword, ...yourRoutes],
 *   })
 *
 * To check it: `curl -i -X POST https://<medusa>/auth/customer/emailpass/reset-password \
 *   -H 'content-type: application/json' -d '{"identifier":"a@example.com"}'` answers 404.
 */
import { defineMiddlewares } from "@medusajs/framework/http"
import type {
  MedusaNextFunction,
  MedusaRequest,
  MedusaResponse,
  MiddlewareRoute,
} from "@medusajs/framework/http"
import { MedusaError } from "@medusajs/framework/utils"

/** The message of the 404; the README of medusa-reset quotes it. */
export const RESET_PASSWORD_CLOSED = "Password reset is not available on this server"

/** Medusa's own path for the route: Express matches it by the route's rules. */
const RESET_PASSWORD_PATH = "/auth/:actor_type/:auth_provider/reset-password"

/**
 * Refuses every POST. Other methods pass on and find no route, as on a stock Medusa (and a CORS
 * preflight stays answered, so a browser can read the 404).
 */
export function closedResetPassword(
  req: MedusaRequest,
  _res: MedusaResponse,
  next: MedusaNextFunction
) {
  if (req.method !== "POST") {
    return next()
  }
  // Through Medusa's error handler (or the project's own `errorHandler`), like any Medusa 404.
  return next(new MedusaError(MedusaError.Types.NOT_FOUND, RESET_PASSWORD_CLOSED))
}

export const closeMedusaResetPassword: MiddlewareRoute[] = [
  {
    matcher: RESET_PASSWORD_PATH,
    // No `methods`: Medusa registers a middleware without them ahead of every route's own
    // middlewares, so this answers before Medusa validates the provider or the body; the same 404
    // for every request, whatever it carries.
    middlewares: [closedResetPassword],
    // Not even parsed: malformed or over-large bodies get the 404 as well, not a parser error.
    bodyParser: false,
  },
]

export default defineMiddlewares({
  routes: closeMedusaResetPassword,
})
