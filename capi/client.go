package main

import (
	"sync"

	"github.com/fastreq/fastreq/core"
)

// client is the C view of a core client: the engine client and, once
// asked for, its mailbox.
type client struct {
	*core.Client

	mboxOnce sync.Once
	mbox     *mailbox // fastreq_client_mailbox
	mboxErr  error
}

func wrapClient(c *core.Client) *client { return &client{Client: c} }
