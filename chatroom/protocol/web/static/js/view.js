// The DOM. Every text from the network goes in as textContent (or an
// attribute), never as HTML; only http and https links become links.

import { roomKey } from "./state.js";

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"]+/gi;
// Punctuation that ends a sentence more often than a URL.
const TRAILING = /[.,;:!?)\]'"]+$/;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A link for `candidate` if it is an http(s) URL, else null. */
export function safeLink(candidate) {
  let url;
  try {
    url = new URL(candidate);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return null;
  }
  const link = element("a", "", candidate);
  link.href = url.href;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  return link;
}

/** `text` as text nodes, its http(s) URLs as links. */
export function withLinks(text) {
  const fragment = document.createDocumentFragment();
  let from = 0;
  for (const found of text.matchAll(URL_PATTERN)) {
    const candidate = found[0].replace(TRAILING, "");
    const link = safeLink(candidate);
    if (!link) {
      continue;
    }
    fragment.append(text.slice(from, found.index), link);
    from = found.index + candidate.length;
  }
  fragment.append(text.slice(from));
  return fragment;
}

/** HH:MM, local time, the date too if not today; all of it in the title. */
function timeElement(time) {
  const node = element("time", "time");
  const date = new Date(time);
  const clock = date.toTimeString().slice(0, 5);
  const today = date.toDateString() === new Date().toDateString();
  node.dateTime = time;
  node.title = date.toLocaleString();
  node.textContent = today ? clock : `${date.toLocaleDateString()} ${clock}`;
  return node;
}

function renderItem(item) {
  const row = element("li", `item ${item.kind}`);
  if (item.time) {
    row.append(timeElement(item.time), " ");
  }
  if (item.kind === "message" && item.action) {
    row.classList.add("action");
    row.append(element("span", "sender", `* ${item.sender}`), " ");
  } else if (item.kind === "message") {
    row.append(element("span", "sender", item.sender), " ");
  }
  const text = element("span", "text");
  text.append(withLinks(item.text));
  row.append(text);
  if (item.pending) {
    row.classList.add("pending");
  }
  if (item.error) {
    row.classList.add("failed");
    row.append(" ", element("span", "error", `not sent: ${item.error}`));
  }
  if (item.kind === "reply" && !item.ok) {
    row.classList.add("failed");
  }
  return row;
}

/**
 * Make `container`'s children be `nodes`, moving only what changed: a
 * screen reader hears the new lines, not the whole list again.
 */
function reconcile(container, nodes) {
  let current = container.firstChild;
  for (const node of nodes) {
    if (node === current) {
      current = current.nextSibling;
    } else {
      container.insertBefore(node, current);
    }
  }
  while (current) {
    const next = current.nextSibling;
    current.remove();
    current = next;
  }
}

function conversationButton(conversation, activeKey) {
  const button = element("button", "conversation");
  button.type = "button";
  button.dataset.key = conversation.key;
  const label = conversation.type === "room" ? `#${conversation.name}` : conversation.name;
  button.append(element("span", "name", label));
  if (conversation.key === activeKey) {
    button.setAttribute("aria-current", "true");
  }
  if (conversation.unread) {
    const badge = element("span", "unread", String(conversation.unread));
    badge.append(element("span", "visually-hidden", " unread"));
    button.append(" ", badge);
  }
  return button;
}

function listOf(container, nodes, empty) {
  container.replaceChildren(
    ...(nodes.length ? nodes : [element("li", "empty", empty)]).map((node) => {
      if (node.tagName === "LI") {
        return node;
      }
      const item = element("li");
      item.append(node);
      return item;
    }),
  );
}

/** The page's elements, found once, and how each part is drawn. */
export class View {
  constructor(root = document) {
    const find = (id) => root.getElementById(id);
    this.banner = find("banner");
    this.login = find("login");
    this.loginForm = find("login-form");
    this.loginName = find("login-name");
    this.loginPassword = find("login-password");
    this.loginError = find("login-error");
    this.chat = find("chat");
    this.sidebar = find("sidebar");
    this.menuToggle = find("menu-toggle");
    this.menuClose = find("menu-close");
    this.me = find("me");
    this.joinedRooms = find("joined-rooms");
    this.privateList = find("private-list");
    this.publicRooms = find("public-rooms");
    this.createForm = find("create-form");
    this.createName = find("create-name");
    this.privateForm = find("private-form");
    this.privateName = find("private-name");
    this.logout = find("logout");
    this.title = find("conversation-title");
    this.topic = find("conversation-topic");
    this.leave = find("leave-button");
    this.older = find("older");
    this.messages = find("messages");
    this.sendForm = find("send-form");
    this.input = find("input");
    this.drawn = new WeakMap();
  }

  /** An item's row, made again only when it changed (its reply came). */
  nodeOf(item) {
    const signature = `${item.pending}|${item.error}`;
    let drawn = this.drawn.get(item);
    if (!drawn || drawn.signature !== signature) {
      drawn = { node: renderItem(item), signature };
      this.drawn.set(item, drawn);
    }
    return drawn.node;
  }

  /** A banner over the page ("reconnecting…"), or none for null. */
  showBanner(text) {
    this.banner.hidden = text === null;
    this.banner.textContent = text || "";
  }

  showLogin(error = "") {
    this.chat.hidden = true;
    this.login.hidden = false;
    this.loginError.textContent = error;
    this.loginPassword.value = "";
    this.loginName.focus();
  }

  showChat(me) {
    this.login.hidden = true;
    this.loginPassword.value = ""; // the connection keeps it, nothing else
    this.chat.hidden = false;
    this.me.textContent = me;
    this.input.focus();
  }

  openSidebar(open) {
    this.sidebar.classList.toggle("open", open);
    this.menuToggle.setAttribute("aria-expanded", String(open));
  }

  /** The sidebar, drawn anew; the focus stays on the button it was on. */
  renderSidebar(state) {
    const focused = this.sidebar.contains(document.activeElement) ? document.activeElement : null;
    const button = (c) => conversationButton(c, state.activeKey);
    listOf(this.joinedRooms, state.rooms().map(button), "no rooms");
    listOf(this.privateList, state.privates().map(button), "none yet");
    const listed = state.publicRooms.map((room) => {
      const row = element("li", "listed");
      const join = element("button", "join", `#${room.name}`);
      join.type = "button";
      join.dataset.room = room.name;
      if (room.joined) {
        join.dataset.key = roomKey(room.name);
      }
      const members = `${room.members} ${room.members === 1 ? "member" : "members"}`;
      const about = room.joined ? `${members}, joined` : members;
      const described = element("span", "about", room.topic ? `${about}: ${room.topic}` : about);
      described.title = described.textContent;
      row.append(join, described);
      return row;
    });
    listOf(this.publicRooms, listed, "no rooms");
    if (focused && !focused.isConnected && focused.tagName === "BUTTON") {
      const same = [...this.sidebar.querySelectorAll("button")].find(
        (b) =>
          b.className === focused.className &&
          b.dataset.key === focused.dataset.key &&
          b.dataset.room === focused.dataset.room,
      );
      (same || this.sidebar.querySelector("button")).focus();
    }
  }

  /**
   * The active conversation, keeping the reader's place when older lines
   * come first; from its end if `fromEnd` (a conversation just opened).
   */
  renderConversation(state, fromEnd = false) {
    const conversation = state.active;
    const pane = this.messages;
    const fromBottom = pane.scrollHeight - pane.scrollTop;
    const atBottom = fromEnd || fromBottom - pane.clientHeight < 8;
    if (!conversation) {
      this.title.textContent = "no conversation";
      this.topic.textContent = "";
      this.leave.hidden = true;
      this.older.hidden = true;
      pane.replaceChildren();
      return;
    }
    const isRoom = conversation.type === "room";
    this.title.textContent = isRoom ? `#${conversation.name}` : `private: ${conversation.name}`;
    this.topic.replaceChildren(withLinks(conversation.topic || ""));
    this.leave.hidden = !isRoom;
    this.older.hidden = !isRoom || conversation.historyComplete;
    this.input.setAttribute("aria-label", `Message to ${this.title.textContent}`);
    reconcile(pane, conversation.items.map((item) => this.nodeOf(item)));
    pane.scrollTop = atBottom ? pane.scrollHeight : pane.scrollHeight - fromBottom;
  }
}
