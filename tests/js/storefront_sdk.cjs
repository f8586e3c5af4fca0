// A storefront's calls through Medusa's own JS SDK (@medusajs/js-sdk 2.21.2, from the Medusa install
// tools/with-medusa made; NODE_PATH points at it), in the two ways the README shows:
//   one baseUrl: the SDK talks only to `make run`, which answers the reset route and forwards the rest;
//   two clients: the shop's client talks to Medusa, a second one only asks for resets.
// Prints one JSON line of what happened; exits non-zero on any failure.
const Medusa = require("@medusajs/js-sdk").default

async function main() {
  const [local, medusaUrl, email, password] = process.argv.slice(2)
  const result = {}

  const one = new Medusa({ baseUrl: local })
  const registered = await one.auth.register("customer", "emailpass", { email, password })
  result.registeredThroughProxy = typeof registered === "string" && registered.length > 0
  await one.auth.resetPassword("customer", "emailpass", { identifier: email })
  result.resetThroughOneBaseUrl = true
  const token = await one.auth.login("customer", "emailpass", { email, password })
  result.loggedInThroughProxy = typeof token === "string" && token.length > 0

  const shop = new Medusa({ baseUrl: medusaUrl })
  const resets = new Medusa({ baseUrl: local })
  const again = await shop.auth.login("customer", "emailpass", { email, password })
  result.loggedInAtMedusa = typeof again === "string" && again.length > 0
  await resets.auth.resetPassword("customer", "emailpass", { identifier: email })
  result.resetThroughSecondClient = true

  console.log(JSON.stringify(result))
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error))
  process.exit(1)
})
