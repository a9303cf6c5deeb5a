module github.com/vigil-go/vigil

go 1.26

require github.com/asaskevich/EventBus v0.0.0-20200907212545-49d423059eef

require (
	github.com/hashicorp/golang-lru/v2 v2.0.7 // indirect
	github.com/miekg/dns v1.1.73 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)
