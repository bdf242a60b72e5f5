package record

import "fmt"

func errObjectTooLarge(name string, size int64) error {
	return fmt.Errorf("object %s: size %d over the limit of %d", name, size, maxObjectRead)
}
