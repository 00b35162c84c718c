// The page: wires the connection, the state and the view together.

import { Connection, socketUrl } from "./connection.js";
import { noticeRoom, parseHistoryLine, parseJoinedRoom, parseListedRoom } from "./lines.js";
import { ChatState, nowTime, privateKey, roomKey } from "./state.js";
import { View } from "./view.js";

const HISTORY_FIRST = 50;
const HISTORY_STEP = 50;
const HISTORY_MOST = 1000; // the most /history gives
// Typed commands after which the room lists may have changed.
const ROOM_COMMANDS = new Set(["j", "join", "c", "create", "l", "leave", "cd", "room", "topic"]);
const ROOMS_REFRESH_DELAY = 200;

class App {
  constructor(view) {
    this.view = view;
    this.state = new ChatState();
    this.loading = new Set();
    this.loggingIn = false;
    this.roomsRefresh = null;
    this.connection = new Connection({
      url: socketUrl(location.href),
      onPushed: (parsed) => this.pushed(parsed),
      onState: (state, detail) => this.connectionState(state, detail),
      onLoggedIn: (again, reply) => this.loggedIn(again, reply),
    });
    this.listen();
    view.showLogin();
  }

  listen() {
    const view = this.view;
    view.loginForm.addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.loggingIn) {
        return;
      }
      const register = event.submitter && event.submitter.value === "register";
      this.logIn(view.loginName.value.trim(), view.loginPassword.value, register);
    });
    view.sendForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = view.input.value;
      if (text.trim()) {
        view.input.value = "";
        this.submit(text);
      }
    });
    view.sidebar.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-key], button[data-room]");
      if (!button) {
        return;
      }
      if (button.dataset.key && this.state.conversation(button.dataset.key)) {
        this.select(button.dataset.key);
      } else if (button.dataset.room) {
        this.enterRoom(`/j ${button.dataset.room}`, button.dataset.room);
      }
    });
    view.createForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = view.createName.value.trim();
      if (name) {
        view.createName.value = "";
        this.enterRoom(`/c ${name}`, name);
      }
    });
    view.privateForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = view.privateName.value.trim();
      if (name) {
        view.privateName.value = "";
        this.state.ensure("private", name);
        this.select(privateKey(name));
      }
    });
    view.leave.addEventListener("click", () => {
      const room = this.state.active;
      if (room && room.type === "room") {
        this.command(`/l ${room.name}`);
      }
    });
    view.logout.addEventListener("click", () => {
      this.connection.send("/logout").catch(() => {});
      this.connection.stop();
    });
    view.older.addEventListener("click", () => this.loadOlder());
    // Rooms others made meanwhile: nothing tells the page of them.
    window.addEventListener("focus", () => {
      if (this.connection.online) {
        this.refreshRooms();
      }
    });
    view.messages.addEventListener("scroll", () => {
      if (view.messages.scrollTop === 0) {
        this.loadOlder();
      }
    });
    view.menuToggle.addEventListener("click", () => {
      const open = !view.sidebar.classList.contains("open");
      view.openSidebar(open);
      if (open) {
        view.sidebar.querySelector("button, input").focus();
      }
    });
    const closeSidebar = () => {
      view.openSidebar(false);
      view.menuToggle.focus();
    };
    view.menuClose.addEventListener("click", closeSidebar);
    view.sidebar.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        closeSidebar();
      }
    });
  }

  async logIn(name, password, register) {
    this.view.loginError.textContent = register ? "creating the account…" : "logging in…";
    this.loggingIn = true;
    const reply = await this.connection.start(name, password, register);
    this.loggingIn = false;
    if (!reply.ok) {
      this.view.showLogin(reply.text || reply.code);
    }
  }

  connectionState(state, detail) {
    if (state === "online") {
      this.view.showBanner(null);
    } else if (state === "reconnecting") {
      this.view.showBanner("reconnecting…");
    } else if (state === "unreachable") {
      this.view.showBanner(`server unreachable: trying again in ${Math.round(detail / 1000)} s`);
    } else if (state === "stopped") {
      this.view.showBanner(null);
      this.view.showLogin(detail);
    }
  }

  async loggedIn(again, reply) {
    if (!again) {
      const welcome = /^welcome, (\S+)/.exec(reply.text);
      this.state = new ChatState();
      this.state.me = welcome ? welcome[1] : this.view.loginName.value.trim();
      this.view.showChat(this.state.me);
    }
    this.send("/set timestamps on");
    const known = new Set(this.state.rooms().map((room) => room.key));
    await this.refreshRooms(); // and the history of rooms new to the page
    // What was said meanwhile in the rooms it knew.
    const missed = this.state.rooms().filter((room) => known.has(room.key));
    await Promise.all(missed.map((room) => this.loadHistory(room, HISTORY_FIRST)));
    if (again && this.state.active) {
      this.state.add(this.state.active, { kind: "notice", text: "reconnected", time: nowTime() });
      this.render();
    }
  }

  /** Send a line; a lost connection is a refusal like any other. */
  async send(line) {
    try {
      return await this.connection.send(line);
    } catch (error) {
      return { ok: false, code: "not-connected", text: "not connected", data: [] };
    }
  }

  async refreshRooms() {
    const [joined, listed] = await Promise.all([this.send("/rooms"), this.send("/rooms all")]);
    if (!joined.ok || !listed.ok) {
      return;
    }
    const before = new Set(this.state.rooms().map((room) => room.key));
    const shown = this.state.active;
    this.state.setJoined(joined.data.map(parseJoinedRoom));
    this.state.setListed(listed.data.map(parseListedRoom).filter(Boolean));
    if (shown && shown.type === "room" && !this.state.conversation(shown.key) && this.state.active) {
      const text = `you are no longer in #${shown.name}`;
      this.state.add(this.state.active, { kind: "notice", text, time: nowTime() });
    }
    this.render(this.state.active !== shown);
    const added = this.state.rooms().filter((room) => !before.has(room.key));
    await Promise.all(added.map((room) => this.loadHistory(room, HISTORY_FIRST)));
  }

  scheduleRoomsRefresh() {
    clearTimeout(this.roomsRefresh);
    this.roomsRefresh = setTimeout(() => this.refreshRooms(), ROOMS_REFRESH_DELAY);
  }

  /** `/history` of a room's last `count` messages, merged into what it shows. */
  async loadHistory(room, count) {
    if (this.loading.has(room.key)) {
      return;
    }
    this.loading.add(room.key);
    const reply = await this.send(`/history #${room.name} ${count}`);
    this.loading.delete(room.key);
    if (!reply.ok) {
      return;
    }
    const messages = reply.data.map(parseHistoryLine).filter(Boolean);
    const added = this.state.addHistory(room, messages);
    if (messages.length < count || count >= HISTORY_MOST || (count > HISTORY_FIRST && !added)) {
      room.historyComplete = true;
    }
    if (room === this.state.active) {
      this.view.renderConversation(this.state);
    }
  }

  loadOlder() {
    const room = this.state.active;
    if (room && room.type === "room" && !room.historyComplete) {
      const count = Math.min(HISTORY_MOST, this.state.storedCount(room) + HISTORY_STEP);
      this.loadHistory(room, count);
    }
  }

  select(key) {
    this.state.select(key);
    this.view.openSidebar(false);
    this.render(true);
    this.view.input.focus();
  }

  /** `/j` or `/c`: once in, the room is shown with its history. */
  async enterRoom(line, name) {
    const reply = await this.command(line);
    if (reply.ok && this.state.conversation(roomKey(name))) {
      this.select(roomKey(name));
    }
  }

  /** What the input sends: a message to the conversation shown, or a command as typed. */
  submit(text) {
    const conversation = this.state.active;
    const isCommand = text.startsWith("/") && !text.startsWith("//");
    if (!isCommand && !conversation) {
      // Typed before the room list is in: the server's default room takes it
      // as typed, and its history brings it back once the room is shown.
      this.command(text);
      return;
    }
    if (!isCommand) {
      this.say(conversation, text.startsWith("//") ? text.slice(1) : text, false);
      return;
    }
    const action = /^\/me (.+)$/i.exec(text);
    if (action && conversation) {
      this.say(conversation, action[1], true);
      return;
    }
    const direct = /^\/(?:private|msg) <?([^\s>]+)>? (.+)$/i.exec(text);
    if (direct) {
      const peer = this.state.ensure("private", direct[1]);
      this.state.select(peer.key);
      this.say(peer, direct[2], false);
      return;
    }
    this.command(text);
  }

  /** A message or action, shown at once as the user's own, marked when answered. */
  async say(conversation, typed, action) {
    if (!conversation) {
      return;
    }
    // As the server stores it, so that history finds it again.
    const text = typed.trim().normalize("NFC");
    const item = this.state.add(conversation, {
      kind: "message",
      action,
      sender: this.state.me,
      text,
      time: nowTime(),
      own: true,
      local: true,
      pending: true,
    });
    this.render(true);
    let reply;
    if (conversation.type === "private") {
      reply = await this.send(`${action ? "/describe" : "/private"} ${conversation.name} ${text}`);
    } else if (action) {
      // /me goes to the default room: make it this one first. The server
      // runs /me once /cd is answered; sent at once, nothing comes between.
      if (this.state.defaultRoom !== conversation.name) {
        this.state.defaultRoom = conversation.name;
        this.send(`/cd ${conversation.name}`).then((moved) => {
          this.state.defaultRoom = moved.ok ? this.state.defaultRoom : null;
        });
      }
      reply = await this.send(`/me ${text}`);
    } else {
      reply = await this.send(`/public ${conversation.name} ${text}`);
    }
    item.pending = false;
    if (!reply.ok) {
      item.error = reply.text || reply.code;
    }
    this.render();
  }

  /** A command as typed: its line, then its reply, in the conversation shown. */
  async command(line) {
    const shownIn = this.state.active;
    const note = (item) => {
      if (shownIn && this.state.conversation(shownIn.key)) {
        this.state.add(shownIn, item);
      }
    };
    note({ kind: "command", text: line, time: nowTime() });
    this.render(true);
    const reply = await this.send(line);
    for (const data of reply.data) {
      note({ kind: "reply", ok: true, text: data });
    }
    const final = reply.ok ? `OK ${reply.text}` : `${reply.code}: ${reply.text}`;
    note({ kind: "reply", ok: reply.ok, text: final.trim() });
    const word = line.slice(1).split(" ")[0].toLowerCase();
    const renamed = /^you are now (\S+)$/.exec(reply.text);
    if (reply.ok && renamed) {
      this.state.me = renamed[1];
      this.connection.rename(renamed[1]);
      this.view.me.textContent = renamed[1];
    }
    this.render();
    if (reply.ok && ROOM_COMMANDS.has(word)) {
      await this.refreshRooms();
    }
    return reply;
  }

  /** A line nobody asked for: a message, a notice. */
  pushed(parsed) {
    const state = this.state;
    if (!this.connection.online) {
      return; // the greeting, before the login's reply
    }
    if (parsed.kind === "message" && !this.ownEcho(parsed)) {
      state.receive(parsed, nowTime());
    } else if (parsed.kind === "message") {
      return;
    } else if (parsed.kind === "notice") {
      if (parsed.text === "ping") {
        return;
      }
      const room = noticeRoom(parsed.text);
      const target = (room && state.conversation(roomKey(room))) || state.active;
      if (target) {
        state.add(target, { kind: "notice", text: parsed.text, time: nowTime() });
      }
      if (room) {
        this.scheduleRoomsRefresh();
      }
    } else if (state.active) {
      state.add(state.active, { kind: "notice", text: parsed.text, time: nowTime() });
    }
    this.render();
  }

  /** A private message to yourself comes back: it is shown already, as sent. */
  ownEcho(message) {
    const me = this.state.me.toLowerCase();
    if (!message.private || message.sender.toLowerCase() !== me) {
      return false;
    }
    const self = this.state.conversation(privateKey(me));
    const sent = self && self.items.find((i) => i.own && !i.echoed && i.text === message.text);
    if (sent) {
      sent.echoed = true;
    }
    return Boolean(sent);
  }

  render(fromEnd = false) {
    this.view.renderSidebar(this.state);
    this.view.renderConversation(this.state, fromEnd);
    const unread = [...this.state.conversations.values()].reduce((sum, c) => sum + c.unread, 0);
    document.title = unread ? `(${unread}) chatroom` : "chatroom";
  }
}

new App(new View());
