// Package osb speaks the Open Service Broker API, version 2.17: the wire types
// of its requests and responses, and a client for a broker.
//
// In driftless, service instances and bindings are declared in git next to the
// apps that use them. The controller converges them the way it converges apps:
// it compares what a commit declares with what it has recorded and calls a
// broker through this package's Client to provision, update, bind, unbind and
// deprovision, polling last_operation for the asynchronous ones. The wire types
// ([Catalog], [ProvisionRequest], [Binding], [LastOperation], [ErrorResponse]
// and the rest) carry no client concerns: the built-in PostgreSQL broker serves
// the same types as an OSB server.
//
// The client follows the specification's rules:
//
//   - every request carries X-Broker-API-Version: 2.17, HTTP basic auth, a new
//     X-Broker-API-Request-Identity and, when configured and the request acts
//     for a user, X-Broker-API-Originating-Identity;
//   - provision, update, deprovision, bind and unbind always send
//     accepts_incomplete=true; a 202 Accepted returns an [Operation] that
//     [Client.Wait] polls, honouring Retry-After and the plan's
//     maximum_polling_duration;
//   - a 410 Gone answer to deprovision or unbind (or to last_operation while
//     deprovisioning or unbinding) is success;
//   - broker errors come back as [*Error], matched with errors.Is against
//     [ErrGone], [ErrConflict], [ErrAsyncRequired], [ErrConcurrency] and the
//     other sentinels;
//   - orphan mitigation: when a provision or bind may have created something
//     the caller cannot know about (a timeout or a network failure after the
//     request may have reached the broker, a 5xx, an unexpected 2xx, a 201
//     whose body cannot be read), the client deprovisions or unbinds the same
//     id in the background, logs it, and returns an [*OrphanError] wrapping the
//     original error, whose [OrphanError.Result] reports how the mitigation
//     ended. As the specification's table says, a 200 with an unreadable body,
//     a 408 and other 4xx answers start none; nor does a request that was
//     never sent (the context had ended, the connection was refused). Callers
//     therefore call Provision and Bind only for ids they have not seen
//     created: a failure deletes what the id names.
//
// Credentials (a binding's, a dashboard client's secret, the broker's password
// and any user info in its URL) never appear in errors, logs or String().
package osb
