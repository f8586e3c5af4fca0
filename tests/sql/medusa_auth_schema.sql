-- The tables of Medusa's auth module that this project reads, with the columns, types, keys, indexes
-- and foreign keys Medusa 2.21's migrations give them. Alone, they are a Medusa 2.6–2.15 database;
-- medusa_reset_token_table.sql adds what 2.16 added.

CREATE TABLE auth_identity (
    id text NOT NULL,
    app_metadata jsonb NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz NULL,
    CONSTRAINT auth_identity_pkey PRIMARY KEY (id)
);
CREATE INDEX "IDX_auth_identity_deleted_at" ON auth_identity (deleted_at) WHERE deleted_at IS NULL;

CREATE TABLE provider_identity (
    id text NOT NULL,
    entity_id text NOT NULL,
    provider text NOT NULL,
    auth_identity_id text NOT NULL,
    user_metadata jsonb NULL,
    provider_metadata jsonb NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz NULL,
    CONSTRAINT provider_identity_pkey PRIMARY KEY (id),
    CONSTRAINT provider_identity_auth_identity_id_foreign FOREIGN KEY (auth_identity_id)
        REFERENCES auth_identity (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX "IDX_provider_identity_provider_entity_id" ON provider_identity (entity_id, provider);
CREATE INDEX "IDX_provider_identity_auth_identity_id" ON provider_identity (auth_identity_id);
CREATE INDEX "IDX_provider_identity_deleted_at" ON provider_identity (deleted_at) WHERE deleted_at IS NULL;
