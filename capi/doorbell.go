package main

import "os"

// doorbell is an eventfd that a goroutine waits on through Go's network
// poller -- parked, holding no thread or scheduler slot -- and that any
// thread, Go or C, rings with a plain write. The intake and the mailboxes
// start work this way.
type doorbell struct {
	fd   int
	file *os.File // fd, read through the poller; closing it closes fd
}

func newDoorbell() (*doorbell, error) {
	fd, err := newEventFD()
	if err != nil {
		return nil, err
	}
	return &doorbell{fd: fd, file: os.NewFile(uintptr(fd), "fastreq-doorbell")}, nil // non-blocking: pollable
}

func (d *doorbell) ring() { signalEventFD(d.fd) }

// wait parks until the bell rang (and quiets it), or returns the error
// that ends waiting.
func (d *doorbell) wait() error {
	var counter [8]byte
	_, err := d.file.Read(counter[:])
	return err
}

func (d *doorbell) close() { d.file.Close() }
