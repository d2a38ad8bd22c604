/**
 * Hearth's one IndexedDB database: a versioned schema whose migrations run in order, and small
 * promise wrappers so callers read top to bottom. Stores hold conversations, presets, records that
 * could not be read (kept aside, never dropped) and a few markers (what was migrated in, and when).
 */

export const DB_NAME = "hearth";

// Migration N takes the database from version N to N + 1; a new schema is a new entry at the end.
const MIGRATIONS = [
  (db) => {
    db.createObjectStore("conversations", { keyPath: "id" });
    db.createObjectStore("presets", { keyPath: "id" });
    db.createObjectStore("unreadable", { autoIncrement: true });
    db.createObjectStore("markers", { keyPath: "name" });
  },
];
export const DB_VERSION = MIGRATIONS.length;

let opened = null;

/** The open database (opened once per page; upgraded through MIGRATIONS when it is older). */
export function openDatabase(name = DB_NAME) {
  if (opened) return opened;
  opened = new Promise((resolve, reject) => {
    const request = indexedDB.open(name, DB_VERSION);
    request.onupgradeneeded = (event) => {
      for (let version = event.oldVersion; version < DB_VERSION; version += 1) MIGRATIONS[version](request.result);
    };
    request.onsuccess = () => {
      const db = request.result;
      // Another tab upgrading the schema: let it, and open again on next use.
      db.onversionchange = () => {
        db.close();
        opened = null;
      };
      resolve(db);
    };
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error("Another Hearth tab holds an older version of the saved chats open: "
      + "close it and reload."));
  });
  opened.catch(() => {
    opened = null;
  });
  return opened;
}

/** Run fn(stores) in one transaction over the named stores; resolves with fn's result once committed. */
export async function transact(storeNames, mode, fn) {
  const db = await openDatabase();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(storeNames, mode);
    const stores = Object.fromEntries(storeNames.map((name) => [name, tx.objectStore(name)]));
    let result;
    Promise.resolve(fn(stores)).then((value) => {
      result = value;
    }, (error) => {
      tx.abort();
      reject(error);
    });
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("The browser's storage refused the change."));
  });
}

/** An IDBRequest as a promise. */
export function requested(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Every [key, value] of a store, in key order. */
export async function allEntries(store) {
  const [keys, values] = await Promise.all([requested(store.getAllKeys()), requested(store.getAll())]);
  return keys.map((key, i) => [key, values[i]]);
}
