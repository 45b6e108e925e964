// The lab's JavaScript guest: a checkout handler compiled to a component by componentize-js (SpiderMonkey inside).
// wasmlab/workloads/js_handler.py computes the same response in Python (expected_response), so every request's
// result is checked; both use integers only (prices in cents) so the two serialise the same JSON.

// FNV-1a over the UTF-16 code units of the SKUs joined by ",": real work per item, and a digest the check sees.
function fnv1a(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

function checkout(request) {
  if (request.method !== "POST" || request.path !== "/v1/checkout") {
    return { id: request.id, status: 404 };
  }
  const items = request.items || [];
  if (items.length === 0) {
    return { id: request.id, status: 400, error: "no items" };
  }
  let total = 0;
  let quantity = 0;
  for (const item of items) {
    total += item.price * item.quantity;
    quantity += item.quantity;
  }
  const discount = request.coupon === "TEN" ? Math.floor(total / 10) : 0;
  const digest = fnv1a(items.map((item) => item.sku).join(","));
  return { id: request.id, status: 200, lines: items.length, quantity, total: total - discount, discount, digest };
}

export const handler = {
  handle(request) {
    return JSON.stringify(checkout(JSON.parse(request)));
  },
};
