// The line protocol of docs/protocol.md, read: one server line in, one plain
// object out; and the pairing of requests with their one final reply each.

const TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (.*)$/;
const ROOM_LINE = /^\[([^\]\s]+)\] (.*)$/;
// No name is "*", so "[room] * x" is always an action.
const ACTION = /^\* (\S+) (.*)$/;
const SAYING = /^(\S+?): (.*)$/;

/**
 * One server line as an object with a `kind`: "ok", "err", "data",
 * "message" (room or private, action or not), "notice" or "other".
 */
export function parseLine(line) {
  if (line === "+OK" || line.startsWith("+OK ")) {
    return { kind: "ok", text: line.slice(4) };
  }
  if (line.startsWith("-ERR")) {
    const rest = line.slice(5);
    const space = rest.indexOf(" ");
    return space < 0
      ? { kind: "err", code: rest, text: "" }
      : { kind: "err", code: rest.slice(0, space), text: rest.slice(space + 1) };
  }
  if (line.startsWith("= ")) {
    return { kind: "data", text: line.slice(2) };
  }
  if (line.startsWith("* ")) {
    return { kind: "notice", text: line.slice(2) };
  }
  const timed = TIME.exec(line);
  const message = parseMessage(timed ? timed[2] : line, timed ? timed[1] : null);
  return message || { kind: "other", text: line };
}

/**
 * `[room] sender: text`, `[private] sender: text` or `[room] * sender action`,
 * with its `time` (null if the line had none); null if it is none of them.
 */
export function parseMessage(text, time = null) {
  const framed = ROOM_LINE.exec(text);
  if (!framed) {
    return null;
  }
  const [, room, body] = framed;
  const action = ACTION.exec(body);
  const saying = action ? null : SAYING.exec(body);
  if (!action && !saying) {
    return null;
  }
  const [, sender, words] = action || saying;
  const isPrivate = room === "private";
  return {
    kind: "message",
    room: isPrivate ? null : room,
    private: isPrivate,
    action: Boolean(action),
    sender,
    text: words,
    time,
  };
}

/** A `/history` data line, `TIME [room] sender: text`; null if not one. */
export function parseHistoryLine(data) {
  const timed = TIME.exec(data);
  return timed ? parseMessage(timed[2], timed[1]) : null;
}

/** A `/rooms` data line: `dev` or `lobby (default)`. */
export function parseJoinedRoom(data) {
  const [name, mark] = data.split(" ");
  return { name, isDefault: mark === "(default)" };
}

const LISTED = /^(\S+) (\d+) members?( \(joined\))?(?:: (.*))?$/;

/** A `/rooms all` data line: `dev 3 members (joined): TOPIC`; null if not one. */
export function parseListedRoom(data) {
  const found = LISTED.exec(data);
  if (!found) {
    return null;
  }
  const [, name, members, joined, topic] = found;
  return { name, members: Number(members), joined: Boolean(joined), topic: topic || "" };
}

/**
 * Pairs requests with replies: every line sent gets exactly one final
 * `+OK` or `-ERR`, in order, its `= ` data lines just before it. Anything
 * else is pushed by the server and goes to `onPushed`, wherever it falls.
 */
export class Pairer {
  constructor(onPushed) {
    this.onPushed = onPushed;
    this.waiting = [];
    this.data = [];
  }

  /** Note a line sent; the promise fires with `{ok, code, text, data}`. */
  expect(line) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ line, resolve, reject });
    });
  }

  /** Feed one server line. */
  receive(line) {
    const parsed = parseLine(line);
    if (parsed.kind === "data" && this.waiting.length) {
      this.data.push(parsed.text);
    } else if ((parsed.kind === "ok" || parsed.kind === "err") && this.waiting.length) {
      const request = this.waiting.shift();
      const reply = {
        ok: parsed.kind === "ok",
        code: parsed.code || null,
        text: parsed.text,
        data: this.data,
      };
      this.data = [];
      request.resolve(reply);
    } else {
      this.onPushed(parsed, line);
    }
  }

  /** The connection ended: no reply will come to what is waiting. */
  fail(reason) {
    const waiting = this.waiting;
    this.waiting = [];
    this.data = [];
    for (const request of waiting) {
      request.reject(new Error(reason));
    }
  }
}

const NOTICE_ROOM = /^#([^\s:,]+)|^\S+ (?:joined|left) #(\S+)$/;

/** The room a notice is about (`#dev: ...`, `bob joined #dev`), or null. */
export function noticeRoom(text) {
  const found = NOTICE_ROOM.exec(text);
  return found ? found[1] || found[2] : null;
}
