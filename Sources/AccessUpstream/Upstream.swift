// The upstream platform's side of accessd: the HTTP API and MQTT push. Both read the durable
// event log by cursor and wake on `EventFeed`, so neither can lose or reorder an event.
