// Package s3 is the S3 backend of the content-addressed store: a
// [cas.Backend] on any S3-compatible bucket (AWS S3, MinIO, …) built on
// aws-sdk-go-v2.
//
// Glossary: a bucket holds the store's objects under an optional key
// prefix ("s3://BUCKET/PREFIX"); an object key is the store's key with the
// prefix in front, so chunk d lives at PREFIX/chunks/ab/cd/<hex of d>.
//
// The client comes from config.LoadDefaultConfig: the standard credential
// chain (environment, shared files, SSO, instance roles), AWS_REGION, and
// AWS_ENDPOINT_URL_S3 for another server, with the SDK's standard retryer
// (throttling and 5xx are retried with backoff). [Options.Endpoint] and
// [Options.PathStyle] point it at an S3-compatible server directly.
//
// # Errors
//
// A missing object (NoSuchKey, or a 404 from HeadObject) is mapped to
// [blockdiff.ErrNotFound]; the SDK's error stays in the chain, so
// errors.As can still reach *types.NoSuchKey or smithy.APIError. Messages
// name the operation and the full s3:// address.
//
// # Concurrency
//
// A [Backend] is safe for concurrent use; several processes may write one
// store at once (each PutObject replaces an object atomically, and S3 is
// read-after-write consistent, which the store's lock markers rely on).
package s3
