/**
 * Which driver errors mean "the PostgreSQL server went away" (then STORE_ERROR) and which are a
 * statement refused (left as they are, their SQLSTATE read by the code that expects them).
 */
import { describe, expect, it } from "vitest";
import { isConnectionLoss, storeLost } from "../../src/adapters/pg-connection-loss.ts";
import { isMaqetError } from "../../src/errors/maqet-error.ts";

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe("pg connection loss", () => {
  it.each([
    ["a restart's admin shutdown", withCode("terminating connection due to administrator command", "57P01")],
    ["a crash shutdown", withCode("terminating connection because of crash of another server process", "57P02")],
    ["a server starting up", withCode("the database system is starting up", "57P03")],
    ["a connection exception (class 08)", withCode("connection failure", "08006")],
    ["a refused connection", withCode("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED")],
    ["a reset connection", withCode("read ECONNRESET", "ECONNRESET")],
    ["a connection cut mid-statement", new Error("Connection terminated unexpectedly")],
    ["a client broken earlier", new Error("Client has encountered a connection error and is not queryable")],
  ])("%s is STORE_ERROR", (_what, error) => {
    expect(isConnectionLoss(error)).toBe(true);
    const coded = storeLost(error);
    expect(isMaqetError(coded, "STORE_ERROR")).toBe(true);
    expect((coded as Error).message).toContain(error.message);
    expect((coded as Error).cause).toBe(error);
  });

  it.each([
    ["a unique violation", withCode("duplicate key value violates unique constraint", "23505")],
    ["a serialization failure", withCode("could not serialize access", "40001")],
    ["the stale-epoch trigger", withCode("stale owner epoch", "MQ409")],
    ["a syntax error", withCode('syntax error at or near "selec"', "42601")],
    ["no code at all", new Error("something else")],
  ])("%s is left as it is", (_what, error) => {
    expect(isConnectionLoss(error)).toBe(false);
    expect(storeLost(error)).toBe(error);
  });

  it("a thrown non-error is left as it is", () => {
    expect(storeLost("boom")).toBe("boom");
  });
});
