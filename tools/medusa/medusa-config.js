// A Medusa 2.21.2 backend for the differential tests: the route's settings come from the
// environment that tools/with-medusa sets, so both sides are configured alike.
const { defineConfig } = require("@medusajs/framework/utils")

const cors = process.env.MEDUSA_CORS || "http://localhost:8000"

module.exports = defineConfig({
  projectConfig: {
    databaseUrl: process.env.DATABASE_URL,
    databaseDriverOptions: { ssl: false },
    http: {
      jwtSecret: process.env.JWT_SECRET,
      cookieSecret: process.env.COOKIE_SECRET,
      storeCors: cors,
      adminCors: cors,
      authCors: cors,
      // The same allow-list as the route's AUTH_PROVIDERS in the tests.
      authMethodsPerActor: { customer: ["emailpass"], user: ["emailpass"] },
    },
  },
  admin: { disable: true },
})
