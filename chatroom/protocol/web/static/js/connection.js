// The socket to the server: one text frame per line (subprotocol
// chatroom.line), the login replayed after every reconnect, and a backoff
// between attempts. The password lives in this object only: never in
// storage, cookies or the URL.

import { Pairer } from "./lines.js";

export const SUBPROTOCOL = "chatroom.line";
export const BACKOFF = { first: 500, factor: 2, most: 10000 };
// Failed attempts in a row after which the server counts as unreachable.
export const UNREACHABLE_AFTER = 3;
// Once logged in, a /ping this often: with no reply within `within` the
// connection counts as lost, though the browser has not noticed (a network
// gone rather than a server stopped).
export const KEEPALIVE = { every: 30000, within: 15000 };
// Replies to a replayed login that no retry can change.
const FINAL_REFUSALS = new Set(["auth-failed", "account-suspended", "bad-name", "bad-password"]);

/** Milliseconds to wait before attempt number `attempt` (0 for the first retry). */
export function backoffDelay(attempt, backoff = BACKOFF) {
  return Math.min(backoff.most, backoff.first * backoff.factor ** attempt);
}

/** The WebSocket URL beside the page: ws(s)://host/ws for a page at /. */
export function socketUrl(pageUrl) {
  const url = new URL("ws", pageUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  url.search = "";
  return url.href;
}

/**
 * One logged-in session that survives lost connections.
 *
 * Callbacks: `onPushed(parsed, line)` for every line that is not a reply,
 * `onState(state, detail)` with state "online", "reconnecting",
 * "unreachable" or "stopped" (detail: the reason), and `onLoggedIn(again,
 * reply)` after each successful login, `again` true after a reconnect.
 */
export class Connection {
  constructor({ url, onPushed, onState, onLoggedIn, WebSocketClass = WebSocket, timers = globalThis }) {
    this.url = url;
    this.onPushed = onPushed;
    this.onState = onState;
    this.onLoggedIn = onLoggedIn;
    this.WebSocketClass = WebSocketClass;
    this.timers = timers;
    this.credentials = null;
    this.socket = null;
    this.pairer = null;
    this.online = false;
    this.failures = 0;
    this.retry = null;
    this.beat = null;
    this.loggedInOnce = false;
  }

  /**
   * Open the socket and log in (or register): fires with the login's reply,
   * `ok` false if refused. A first login is not retried.
   */
  start(name, password, register = false) {
    this.stop();
    this.credentials = { name, password };
    this.loggedInOnce = false;
    return this.open(register ? "/register" : "/login");
  }

  /** Send one line once logged in: fires with its reply (see Pairer). */
  send(line) {
    if (!this.online) {
      return Promise.reject(new Error("not connected"));
    }
    const reply = this.pairer.expect(line);
    this.socket.send(line);
    return reply;
  }

  /** The name to log in with next time, after a rename. */
  rename(name) {
    if (this.credentials) {
      this.credentials.name = name;
    }
  }

  /** End the session for good: no reconnect, the password forgotten. */
  stop(reason = "") {
    const wasActive = this.credentials !== null;
    this.credentials = null;
    this.online = false;
    this.timers.clearTimeout(this.retry);
    this.timers.clearTimeout(this.beat);
    this.retry = null;
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close();
    }
    if (this.pairer) {
      this.pairer.fail("logged out");
      this.pairer = null;
    }
    if (wasActive) {
      this.onState("stopped", reason);
    }
  }

  open(command) {
    return new Promise((resolve) => {
      const socket = new this.WebSocketClass(this.url, SUBPROTOCOL);
      const pairer = new Pairer((parsed, line) => this.onPushed(parsed, line));
      this.socket = socket;
      this.pairer = pairer;
      socket.onopen = () => {
        const { name, password } = this.credentials;
        const line = `${command} ${name} ${password}`;
        pairer.expect(line).then((reply) => this.loggedIn(reply, resolve), () => {});
        socket.send(line);
      };
      socket.onmessage = (event) => {
        if (typeof event.data !== "string") {
          return;
        }
        for (const line of event.data.split(/\r?\n/)) {
          if (line) {
            pairer.receive(line);
          }
        }
      };
      socket.onclose = () => this.lost(socket, resolve);
    });
  }

  /** `socket` is gone: closed, or silent past the keepalive. */
  lost(socket, resolveLogin) {
    if (this.socket !== socket) {
      return;
    }
    this.socket = null;
    this.online = false;
    this.timers.clearTimeout(this.beat);
    this.pairer.fail("connection lost");
    if (!this.loggedInOnce) {
      this.credentials = null;
      resolveLogin({ ok: false, code: "unreachable", text: "the server is unreachable", data: [] });
    } else if (this.credentials) {
      this.scheduleRetry();
    }
  }

  keepAlive() {
    const socket = this.socket;
    this.beat = this.timers.setTimeout(() => {
      const late = this.timers.setTimeout(() => {
        this.lost(socket);
        socket.close();
      }, KEEPALIVE.within);
      this.send("/ping").then(
        () => {
          this.timers.clearTimeout(late);
          this.keepAlive();
        },
        () => this.timers.clearTimeout(late),
      );
    }, KEEPALIVE.every);
  }

  loggedIn(reply, resolve) {
    resolve(reply);
    if (!reply.ok) {
      if (!this.loggedInOnce || FINAL_REFUSALS.has(reply.code)) {
        this.stop(reply.text || reply.code);
      } else {
        // A refusal that may pass (rate limit, storage trouble): later.
        this.socket.close();
      }
      return;
    }
    const again = this.loggedInOnce;
    this.loggedInOnce = true;
    this.online = true;
    this.failures = 0;
    this.onState("online", "");
    this.keepAlive();
    this.onLoggedIn(again, reply);
  }

  scheduleRetry() {
    const delay = backoffDelay(this.failures);
    this.failures += 1;
    const state = this.failures > UNREACHABLE_AFTER ? "unreachable" : "reconnecting";
    this.onState(state, delay);
    this.retry = this.timers.setTimeout(() => {
      this.retry = null;
      this.open("/login");
    }, delay);
  }
}
