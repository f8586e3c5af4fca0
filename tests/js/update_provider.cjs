// The storefront's password update through Medusa's own JS SDK (@medusajs/js-sdk 2.21.2, from the
// Medusa install tools/with-medusa made; NODE_PATH points at it), unchanged, against `make run`:
//   sdk.auth.updateProvider("customer", "emailpass", { password }, token)
// then a log-in at Medusa itself with the new password, and the same token once more.
// Prints one JSON line of what happened; exits non-zero on any failure.
const Medusa = require("@medusajs/js-sdk").default

async function main() {
  const [local, medusaUrl, email, token, password] = process.argv.slice(2)
  const result = {}

  const sdk = new Medusa({ baseUrl: local })
  await sdk.auth.updateProvider("customer", "emailpass", { password }, token)
  result.updated = true

  const shop = new Medusa({ baseUrl: medusaUrl })
  const loggedIn = await shop.auth.login("customer", "emailpass", { email, password })
  result.loggedInWithTheNewPassword = typeof loggedIn === "string" && loggedIn.length > 0

  try {
    await sdk.auth.updateProvider("customer", "emailpass", { password: "again-" + password }, token)
    result.reuseRefused = false
  } catch (error) {
    result.reuseRefused = error.status === 401 && error.message === "Invalid token"
  }

  console.log(JSON.stringify(result))
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error))
  process.exit(1)
})
