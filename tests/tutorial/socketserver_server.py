# The tutorial's socketserver servers ("socketserver"), faithfully: a thread per client,
# in each of the lesson's versions. See README.md for what changed.
# Usage: socketserver_server.py HOST PORT [print|hello|loop|dictation]  (default: dictation)
#   print      handle() prints the request
#   hello      greets with b'hello', prints one message
#   loop       "连续接收": greets and prints, forever
#   dictation  "明日默写": hello, one message, with allow_reuse_address
import socketserver
import sys
class PrintServer(socketserver.BaseRequestHandler):
    def handle(self):
        print(self.request)
class HelloServer(socketserver.BaseRequestHandler):
    def handle(self):
        print(self.request)
        self.request.send(b'hello') # 跟所有的client打招呼
        print(self.request.recv(1024)) # 接收客户端的信息
class LoopServer(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            print(self.request) # 这里不能使用input,否则卡住了
            self.request.send(b'hello') # 跟所有的client打招呼
            print(self.request.recv(1024)) # 接收客户端的信息
class MyServer(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.send(b'hello')
        msg = self.request.recv(1024)
        print(msg)
# changed: the lesson rewrites MyServer in place; here its version is an argument.
handlers = {'print': PrintServer, 'hello': HelloServer, 'loop': LoopServer, 'dictation': MyServer}
if __name__ == '__main__':
    socketserver.TCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer((sys.argv[1], int(sys.argv[2])),  # changed: was ('127.0.0.1',9000)
                                             handlers[sys.argv[3] if len(sys.argv) > 3 else 'dictation'])
    server.serve_forever()
