// A seed-style peer of the engine's autosave: Express + PostgreSQL (pg), one process, no sandbox.
// The same contract as the engine for what the bench measures: POST /code-sessions creates a session,
// PATCH /code-sessions/:id saves its code and bumps its version, guarded by the version it was
// based on (body "version" or If-Match: 409 with current_version when stale), answering the session.
"use strict";

const express = require("express");
const { Pool } = require("pg");
const crypto = require("crypto");

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.PG_POOL_SIZE || 10) });
const app = express();
app.use(express.json({ limit: "1mb" }));

const COLUMNS = "id AS session_id, language, source_code, version, created_at, updated_at";

function answer(res, status, row) {
  res.status(status).set("ETag", `"${row.version}"`).json(row);
}

app.get("/health", (req, res) => res.json({ status: "ok" }));

app.post("/code-sessions", async (req, res, next) => {
  try {
    const { language = "python", source_code = "" } = req.body || {};
    if (typeof language !== "string" || typeof source_code !== "string") {
      return res.status(422).json({ error: "validation_error", message: "language and source_code are strings" });
    }
    const { rows } = await pool.query(
      `INSERT INTO sessions (id, language, source_code) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
      [crypto.randomUUID(), language, source_code],
    );
    answer(res, 201, rows[0]);
  } catch (error) {
    next(error);
  }
});

app.patch("/code-sessions/:id", async (req, res, next) => {
  try {
    const body = req.body || {};
    if (body.source_code !== undefined && typeof body.source_code !== "string") {
      return res.status(422).json({ error: "validation_error", message: "source_code is a string" });
    }
    let expected = body.version ?? req.get("If-Match");
    if (expected !== undefined) {
      expected = Number(String(expected).replace(/^W\//, "").replace(/"/g, ""));
      if (!Number.isInteger(expected) || expected < 0) {
        return res.status(400).json({ error: "invalid_version", message: "version is a whole number" });
      }
    }
    const { rows } = await pool.query(
      `UPDATE sessions SET source_code = COALESCE($2, source_code), version = version + 1, updated_at = now()
       WHERE id = $1 AND ($3::int IS NULL OR version = $3) RETURNING ${COLUMNS}`,
      [req.params.id, body.source_code ?? null, expected ?? null],
    );
    if (rows.length) return answer(res, 200, rows[0]);
    const current = await pool.query("SELECT version FROM sessions WHERE id = $1", [req.params.id]);
    if (!current.rows.length) return res.status(404).json({ error: "not_found", message: "No such session." });
    res.status(409).json({ error: "version_conflict", message: "Stale version.", current_version: Number(current.rows[0].version) });
  } catch (error) {
    next(error);
  }
});

app.use((error, req, res, next) => {
  res.status(error.status || 500).json({ error: "error", message: String(error.message || error) });
});

async function main() {
  await pool.query(`CREATE TABLE IF NOT EXISTS sessions (
    id text PRIMARY KEY, language text NOT NULL, source_code text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`);
  const port = Number(process.env.PORT || 3000);
  app.listen(port, process.env.HOST || "127.0.0.1", () => console.log(`peer listening on ${port}`));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
