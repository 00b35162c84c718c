// What the page knows: the conversations (joined rooms and private ones),
// their messages and unread counts, the public room list. No DOM here.

// Own messages carry the page's clock, not the server's: this near counts
// as the same message when history brings it back.
const SAME_MESSAGE_SECONDS = 5;

/** The key of a conversation: `#room` or `@user`, case-folded as names are. */
export function roomKey(name) {
  return `#${name.replace(/^#/, "").toLowerCase()}`;
}

export function privateKey(name) {
  return `@${name.toLowerCase()}`;
}

/** Now, as the server writes times: `2026-11-25T07:26:16Z`. */
export function nowTime(clock = Date.now) {
  return new Date(clock()).toISOString().replace(/\.\d+Z$/, "Z");
}

function seconds(time) {
  return Date.parse(time) / 1000;
}

/** Whether two items are one message (history writes actions as messages). */
export function sameMessage(a, b) {
  if (a.kind !== "message" || b.kind !== "message" || a.sender !== b.sender || a.text !== b.text) {
    return false;
  }
  if (a.local || b.local) {
    return Math.abs(seconds(a.time) - seconds(b.time)) <= SAME_MESSAGE_SECONDS;
  }
  return a.time === b.time;
}

/**
 * Add to `items` those of `fetched` (a `/history` reply, oldest first) it
 * lacks, in `fetched`'s order around the ones it has: many messages share
 * one second, so times alone cannot place them. Fires the number added.
 */
export function mergeHistory(items, fetched) {
  let added = 0;
  let cursor = null; // where the next new one goes, once one is known
  const before = []; // new ones older than the first known one
  for (const item of fetched) {
    const known = items.findIndex((shown) => sameMessage(shown, item));
    if (known >= 0 && cursor === null) {
      items.splice(known, 0, ...before);
      added += before.length;
      cursor = known + before.length + 1;
      before.length = 0;
    } else if (known >= 0) {
      cursor = Math.max(cursor, known + 1);
    } else if (cursor === null) {
      before.push(item);
    } else {
      items.splice(cursor, 0, item);
      cursor += 1;
      added += 1;
    }
  }
  // None was known: each goes by its time, after those of the same second.
  for (const item of before) {
    const later = items.findIndex((shown) => shown.time > item.time);
    items.splice(later < 0 ? items.length : later, 0, item);
    added += 1;
  }
  return added;
}

export class ChatState {
  constructor() {
    this.me = null;
    this.conversations = new Map();
    this.publicRooms = [];
    this.defaultRoom = null;
    this.activeKey = null;
  }

  conversation(key) {
    return this.conversations.get(key) || null;
  }

  get active() {
    return this.conversation(this.activeKey);
  }

  /** The joined rooms, sorted by name. */
  rooms() {
    return [...this.conversations.values()].filter((c) => c.type === "room").sort(byName);
  }

  privates() {
    return [...this.conversations.values()].filter((c) => c.type === "private").sort(byName);
  }

  ensure(type, name) {
    const key = type === "room" ? roomKey(name) : privateKey(name);
    let conversation = this.conversations.get(key);
    if (!conversation) {
      conversation = { key, type, name, items: [], unread: 0, historyComplete: false, topic: "" };
      this.conversations.set(key, conversation);
    }
    return conversation;
  }

  /** The answer to `/rooms`: rooms not in it are left. */
  setJoined(rooms) {
    const keys = new Set(rooms.map((room) => roomKey(room.name)));
    for (const conversation of this.rooms()) {
      if (!keys.has(conversation.key)) {
        this.conversations.delete(conversation.key);
      }
    }
    this.defaultRoom = null;
    for (const room of rooms) {
      this.ensure("room", room.name);
      if (room.isDefault) {
        this.defaultRoom = room.name;
      }
    }
    if (!this.active) {
      const first = this.defaultRoom ? roomKey(this.defaultRoom) : this.rooms()[0]?.key;
      this.activeKey = first || null;
    }
  }

  /** The answer to `/rooms all`. */
  setListed(rooms) {
    this.publicRooms = rooms;
    for (const room of rooms) {
      const conversation = this.conversation(roomKey(room.name));
      if (conversation) {
        conversation.topic = room.topic;
      }
    }
  }

  select(key) {
    const conversation = this.conversation(key);
    if (conversation) {
      this.activeKey = key;
      conversation.unread = 0;
    }
    return conversation;
  }

  /** Add an item to a conversation, counting it unread unless shown or own. */
  add(conversation, item) {
    conversation.items.push(item);
    if (conversation.key !== this.activeKey && item.kind === "message" && !item.own) {
      conversation.unread += 1;
    }
    return item;
  }

  /** A message line from the server (parsed by lines.js); its conversation. */
  receive(message, time) {
    const conversation = message.private
      ? this.ensure("private", message.sender)
      : this.ensure("room", message.room);
    this.add(conversation, {
      kind: "message",
      action: message.action,
      sender: message.sender,
      text: message.text,
      time: message.time || time,
      local: !message.time,
    });
    return conversation;
  }

  /** Older (or missed) messages from `/history`; fires the number added. */
  addHistory(conversation, messages) {
    const items = messages.map((message) => ({
      kind: "message",
      action: false,
      sender: message.sender,
      text: message.text,
      time: message.time,
      local: false,
    }));
    return mergeHistory(conversation.items, items);
  }

  /** How many of a room's messages came from the server: the next `/history` asks more. */
  storedCount(conversation) {
    return conversation.items.filter((item) => item.kind === "message").length;
  }
}

function byName(a, b) {
  return a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1;
}
