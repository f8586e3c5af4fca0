-- The table Medusa 2.16 added to its auth module (single-use reset tokens), as Medusa 2.21's
-- migrations create it; medusa_auth_schema.sql must be applied first.

CREATE TABLE auth_password_reset_token (
    id text NOT NULL,
    auth_identity_id text NOT NULL,
    provider_identity_id text NOT NULL,
    entity_id text NOT NULL,
    token_hash text NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz NULL,
    CONSTRAINT auth_password_reset_token_pkey PRIMARY KEY (id),
    CONSTRAINT auth_password_reset_token_auth_identity_id_foreign FOREIGN KEY (auth_identity_id)
        REFERENCES auth_identity (id) ON UPDATE CASCADE ON DELETE CASCADE,
    CONSTRAINT auth_password_reset_token_provider_identity_id_foreign FOREIGN KEY (provider_identity_id)
        REFERENCES provider_identity (id) ON UPDATE CASCADE ON DELETE CASCADE
);
CREATE INDEX "IDX_auth_password_reset_token_auth_identity_id" ON auth_password_reset_token (auth_identity_id) WHERE deleted_at IS NULL;
CREATE INDEX "IDX_auth_password_reset_token_provider_identity_id" ON auth_password_reset_token (provider_identity_id) WHERE deleted_at IS NULL;
CREATE INDEX "IDX_auth_password_reset_token_token_hash" ON auth_password_reset_token (token_hash) WHERE deleted_at IS NULL;
CREATE INDEX "IDX_auth_password_reset_token_expires_at" ON auth_password_reset_token (expires_at) WHERE deleted_at IS NULL;
CREATE INDEX "IDX_auth_password_reset_token_deleted_at" ON auth_password_reset_token (deleted_at) WHERE deleted_at IS NULL;
