"""Wire formats: HTTP answers -> records (dicts keyed as the JSON documents show) or errors.

`body` reads and bounds the bytes, `json` and `xml` decode them into the same
records, and `endpoints` holds the four endpoints and the envelope (`success`,
`code`, `message`) that turns a record into an error. Everything above this
package is format-blind.
"""
